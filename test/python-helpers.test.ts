// The Python chassis' syndicate.util.gateway and DriverRequest decoder give the same answers as
// the TypeScript helpers and protobufjs on the same inputs: one python3 run computes every answer.
import test from 'ava';
import { execFile } from 'node:child_process';
import {
  make_metadata_command, path_join, request_byte_len, request_byte_offset, request_new_path, request_path,
  request_to_storage_path, request_type,
} from '../drivers/helpers.js';
import { DriverRequestCodec, DriverRequestType, IoType, type DriverRequest } from '../proto/messages.js';
import { pythonChassisDir, pythonCommand } from '../drivers/python-runtime.js';

const BASE: DriverRequest = {
  volume_id: 7n, user_id: 1n, coordinator_id: 2n, file_id: 0xDEADBEEFCAFEF00Dn, file_version: 3n,
  request_type: DriverRequestType.BLOCK, path: '/dir/file.txt', block_id: 4n, block_version: -9223372036854775807n,
  io_type: IoType.READ, offset: 4n * 65536n, len: 65536n, block_size: 65536n, io_context: 18446744073709551615n,
};

const REQUESTS: DriverRequest[] = [
  BASE,
  { ...BASE, file_id: 0xabcn, block_id: 18446744073709551615n, block_version: 0n, io_type: IoType.WRITE, block_vec: [1n, 2n, 2n ** 64n - 1n] },
  { ...BASE, request_type: DriverRequestType.MANIFEST, block_id: undefined, block_version: undefined, manifest_mtime_sec: 1700000000n, manifest_mtime_nsec: 123456789, io_type: IoType.NONE },
  { ...BASE, request_type: DriverRequestType.RENAME_HINT, manifest_mtime_sec: -5n, manifest_mtime_nsec: -1, new_path: '/new/näme', io_type: IoType.SYNC },
  { ...BASE, io_type: IoType.DELETE, offset: undefined, len: undefined, cached_blocks: [true, false, true] },
  { ...BASE, io_type: undefined, offset: 18446744073709551615n },
  {
    ...BASE, path: '/', manifest: {
      volume_id: 7n, coordinator_id: 2n, owner_id: 1n, file_id: 9n, file_version: -1n, mtime_sec: 5n, mtime_nsec: -7, size: 10n, signature: 'c2ln',
      blocks: [{ block_id: 0n, block_version: -3n, hash: Buffer.from('00ff10', 'hex'), chunk_type: 1, offset: 0n, size: 10n }],
    },
  },
  { ...BASE, request_type: 42 },
  { ...BASE, request_type: 0 },
];

const JOINS = [['/storage', '/a/', '//b', 'c/'], ['/storage/', '/7/ABC/1/2'], ['root'], ['', 'a', 'b'], ['s3://bucket', '/x'], ['/a', ''], ['a', '/', 'b']];
const COMMANDS: unknown[][] = [
  ['create', 'file', 0o644, 1234, '/data/a.csv'], ['put', 'directory', 0o755, 1, '/data', 100, 200], ['update', 'file', 0o555, 0, '/'],
  ['delete', 'file', 0o555, 0, '/x'], ['finish', 'file', 0o555, 0, '/'], ['remove', 'file', 0o644, 1, '/a'], ['create', 'symlink', 0o644, 1, '/a'],
  ['create', 'file', 0o644, 1, '/a\nb'], ['create', 'file', 0o644, 1, '/a\0b'], ['create', 'file', 0o644, 1, 'relative/a'],
  ['create', 'file', -1, 1, '/a'], ['create', 'file', 0o10000, 1, '/a'], ['create', 'file', 0o644, -1, '/a'], ['create', 'file', 0o644, 1.5, '/a'],
  ['create', 'file', 0o644, 1, '/a', -1], ['create', 'directory', 0o755, -1, '/d'],
  // mtime, sgw's addition: kept (not on a delete), and refused when it is not a finite number.
  ['put', 'file', 0o444, 10, '/m', 5000, 0, 978307200.5], ['delete', 'file', null, null, '/m', 5000, 0, 978307200],
  ['put', 'file', 0o444, 10, '/m', 5000, 0, 'yesterday'], ['put', 'file', 0o444, 10, '/m', 5000, 0, null],
];

// Runs in python3 with the chassis folder on sys.path; prints one JSON answer.
const PYTHON = `
import base64, json, sys
from syndicate.protobufs.sg_pb2 import DriverRequest, DecodeError
import syndicate.util.gateway as g

def plain(v):
    if isinstance(v, bool) or v is None: return v
    if isinstance(v, (int, float)): return str(v)
    if isinstance(v, bytes): return v.hex()
    if isinstance(v, list): return [plain(x) for x in v]
    if isinstance(v, dict): return {k: plain(x) for k, x in v.items()}
    if hasattr(v, "ListFields"): return {k: plain(x) for k, x in v.ListFields()}
    return v

def attempt(f, *args):
    try: return {"ok": plain(f(*args))}
    except Exception as e: return {"error": type(e).__name__}

inp = json.load(sys.stdin)
out = {"requests": [], "joins": [g.path_join(*j) for j in inp["joins"]],
       "commands": [plain(g.make_metadata_command(*c)) for c in inp["commands"]], "malformed": []}
for b in inp["requests"]:
    r = DriverRequest.FromString(base64.b64decode(b))
    out["requests"].append({"fields": plain(r), **{f.__name__: attempt(f, r) for f in (
        g.request_type, g.request_to_storage_path, g.request_byte_offset, g.request_byte_len, g.request_path, g.request_new_path)}})
for b in inp["malformed"]:
    try: DriverRequest.FromString(base64.b64decode(b)); out["malformed"].append("decoded")
    except DecodeError: out["malformed"].append("refused")
print(json.dumps(out))
`;

function plain(v: unknown): unknown {
  if (typeof v === 'bigint' || typeof v === 'number') return String(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, plain(x)]));
  return v ?? null;
}

function attempt(f: (r: DriverRequest) => unknown, r: DriverRequest): { ok: unknown } | { error: string } {
  try {
    return { ok: plain(f(r)) };
  } catch (err) {
    return { error: (err as Error).name };
  }
}

function runPython(input: object): Promise<Record<string, unknown[]>> {
  return new Promise((resolve, reject) => {
    const child = execFile(pythonCommand(), ['-B', '-c', PYTHON], { env: { ...process.env, PYTHONPATH: pythonChassisDir() }, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout) as Record<string, unknown[]>);
    });
    child.stdin!.end(JSON.stringify(input));
  });
}

test('Python decodes every DriverRequest as protobufjs does, and its helpers give the TypeScript helpers\' answers', async (t) => {
  const encoded = REQUESTS.map((r) => DriverRequestCodec.encode(r));
  const truncated = encoded[0]!.subarray(0, encoded[0]!.length - 3);
  const missingPath = DriverRequestCodec.encode(BASE).subarray(0, 0);
  const badVarint = Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  const py = await runPython({
    requests: encoded.map((b) => Buffer.from(b).toString('base64')), joins: JOINS, commands: COMMANDS,
    malformed: [truncated, missingPath, badVarint].map((b) => Buffer.from(b).toString('base64')),
  });
  const ts = encoded.map((bytes) => {
    const r = DriverRequestCodec.decode(bytes);
    return {
      fields: plain(r),
      request_type: attempt(request_type, r), request_to_storage_path: attempt(request_to_storage_path, r),
      request_byte_offset: attempt(request_byte_offset, r), request_byte_len: attempt(request_byte_len, r),
      request_path: attempt(request_path, r), request_new_path: attempt(request_new_path, r),
    };
  });
  t.deepEqual(py.requests, ts);
  t.is((ts[0]!.request_to_storage_path as { ok: string }).ok, '7/DEADBEEFCAFEF00D/4/-9223372036854775807', 'the comparison sees real answers');
  t.deepEqual(py.joins, JOINS.map(([a, ...b]) => path_join(a!, ...b)));
  const write = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write; // make_metadata_command logs each refusal
  let quietTs: unknown[];
  try {
    quietTs = COMMANDS.map((c) => plain((make_metadata_command as (...a: unknown[]) => unknown)(...c)));
  } finally {
    process.stderr.write = write;
  }
  t.deepEqual(py.commands, quietTs);
  t.true(quietTs.filter((c) => c !== null).length >= 5 && quietTs.includes(null));
  t.deepEqual(py.malformed, ['refused', 'refused', 'refused'], 'truncated, missing required fields, a varint past 10 bytes');
});
