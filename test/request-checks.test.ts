// The checks of a POST's control plane (http/request-checks.ts), in process, fuzzed with
// fast-check: random bytes, random Requests signed by a known peer, and signed Requests with bytes
// changed after signing are each accepted or refused with a 4xx (or the 501/503 WIRE.md gives),
// never any other error; what is accepted has safe paths and blocks that tile its data plane.
import test from 'ava';
import fc from 'fast-check';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChunkType, MessageError, RequestCodec, RequestType, type ManifestBlock, type Request } from '../proto/messages.js';
import { signMessage } from '../proto/signature.js';
import { parseConfig, type GatewayConfig } from '../proto/config/config.js';
import { checkControlPlane, controlPlaneMax } from '../http/request-checks.js';
import { formatBlockUrl } from '../http/data-url.js';
import { HttpError } from '../http/errors.js';
import { configFolder } from './support/config-folder.js';

const PEER = 10n;

function setUp(t: import('ava').ExecutionContext): { config: GatewayConfig; key: import('node:crypto').KeyObject } {
  const { dir, base } = configFolder(t);
  const key = createPrivateKey(readFileSync(join(dir, 'k.pem')));
  writeFileSync(join(dir, 'peer.pub.pem'), createPublicKey(key).export({ type: 'spki', format: 'pem' }) as string);
  const config = parseConfig({
    ...base,
    volume: { gateways: [{ id: String(PEER), type: 'UG', user_id: '1', caps: 27, public_key: 'peer.pub.pem' }] },
    limits: { max_blocks_per_request: 64, max_upload_bytes: 1 << 20 },
  }, dir);
  return { config, key };
}

/** Runs the checks; 'ok', or the status of an expected refusal. Anything else is rethrown (a bug). */
function outcome(bytes: Buffer, config: GatewayConfig): 'ok' | number {
  try {
    const { request, layout } = checkControlPlane(bytes, config);
    // What passes is safe to use: its paths format as URLs, its blocks tile the data plane.
    formatBlockUrl('', { volume_id: 1n, fs_path: request.fs_path, file_id: 1n, file_version: 1n, block_id: 0n, block_version: 0n });
    let end = 0n;
    for (const [i, b] of (layout.sizes.length ? request.blocks ?? [] : []).entries()) {
      if (b.offset !== end || BigInt(layout.sizes[i]!) !== b.size) throw new Error(`block ${i} does not tile the data plane`);
      end += b.size!;
    }
    if (BigInt(layout.total) !== end) throw new Error('the layout total is not the sum of its sizes');
    return 'ok';
  } catch (err) {
    if (err instanceof HttpError) {
      if (err.status === 501 || err.status === 503 || (err.status >= 400 && err.status < 500)) return err.status;
    }
    if (err instanceof MessageError) return 400;
    throw err;
  }
}

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const i64 = fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
const pathArb = fc.oneof(
  fc.constantFrom('/a/b.txt', '/', '/../etc/passwd', '/a/../b', 'relative', '', '/a\u0000b', '/a//b', '/a/./b', '/ok/name'),
  fc.string({ maxLength: 40 }).map((s) => `/${s}`),
  fc.nat({ max: 6000 }).map((n) => `/${'x'.repeat(n)}`),
);
const blockArb: fc.Arbitrary<ManifestBlock> = fc.record({
  block_id: fc.oneof(fc.bigInt({ min: 0n, max: 8n }), u64),
  block_version: fc.oneof(fc.bigInt({ min: -2n, max: 2n }), i64),
  chunk_type: fc.constantFrom(ChunkType.BLOCK, ChunkType.MANIFEST, 0, 7),
  offset: fc.oneof(fc.constant(undefined), fc.bigInt({ min: 0n, max: 4096n }), u64),
  size: fc.oneof(fc.constant(undefined), fc.bigInt({ min: 0n, max: 4096n }), u64),
  hash: fc.oneof(fc.constant(undefined), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 40 })),
}, { requiredKeys: ['block_id', 'block_version'] }).map((b) => Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined)) as unknown as ManifestBlock);
/** Blocks laid out back to back (what a well-behaved sender sends), so the generator reaches acceptance too. */
const tiledBlocks = fc.array(fc.record({ id: fc.nat(1000), size: fc.nat(2048), hash: fc.uint8Array({ minLength: 32, maxLength: 32 }) }), { minLength: 1, maxLength: 8 })
  .map((bs) => {
    let offset = 0n;
    return bs.map((b, i) => {
      const block: ManifestBlock = { block_id: BigInt(b.id * 16 + i), block_version: 1n, chunk_type: ChunkType.BLOCK, offset, size: BigInt(b.size), hash: b.hash };
      offset += BigInt(b.size);
      return block;
    });
  });

test('property: random bytes as a control plane are refused with a 4xx, never another error', (t) => {
  const { config } = setUp(t);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => outcome(Buffer.from(bytes), config) !== 'ok'), { numRuns: 3000 });
  t.pass();
});

test('property: random Requests signed by a known peer are accepted only when safe, else refused with a 4xx/501/503', (t) => {
  const { config, key } = setUp(t);
  const counts = new Map<string, number>();
  /** Mostly the value a well-behaved sender uses, sometimes one of the others. */
  const mostly = <T>(good: T, ...others: T[]) => fc.oneof({ arbitrary: fc.constant(good), weight: 12 }, { arbitrary: fc.constantFrom(...others), weight: 1 });
  const requestArb = fc.record({
    volume_version: mostly(1n, 0n, 2n), cert_version: mostly(1n, 0n, 2n),
    request_type: mostly<number>(RequestType.PUTCHUNKS, RequestType.DELETECHUNKS, RequestType.RENAME_HINT, RequestType.REFRESH, 99),
    volume_id: mostly(1n, 2n), coordinator_id: mostly(PEER, 11n), file_id: u64, file_version: i64,
    fs_path: fc.oneof({ arbitrary: fc.constant('/dir/file.bin'), weight: 2 }, { arbitrary: pathArb, weight: 1 }),
    new_fs_path: fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: pathArb, weight: 1 }),
    blocks: fc.oneof({ arbitrary: tiledBlocks, weight: 3 }, { arbitrary: fc.array(blockArb, { maxLength: 8 }), weight: 1 }),
    user_id: mostly(1n, 2n), src_gateway_id: mostly(PEER, 12n), message_nonce: u64,
  });
  fc.assert(fc.property(requestArb, (fields) => {
    const request = Object.fromEntries(Object.entries({ ...fields, signature: '' }).filter(([, v]) => v !== undefined)) as unknown as Request;
    const bytes = Buffer.from(signMessage(request, RequestCodec.encode, key).bytes);
    const o = outcome(bytes, config);
    counts.set(String(o), (counts.get(String(o)) ?? 0) + 1);
    return true;
  }), { numRuns: 2000 });
  t.log([...counts].map(([k, v]) => `${k}: ${v}`).join(', '));
  t.true((counts.get('ok') ?? 0) > 200, 'the generator reaches requests that pass every check');
});

test('property: a signed Request with bytes changed after signing is refused, never accepted or crashed on', (t) => {
  const { config, key } = setUp(t);
  let offset = 0n;
  const blocks = [100, 0, 300].map((size, i) => {
    const b: ManifestBlock = { block_id: BigInt(i), block_version: 5n, chunk_type: ChunkType.BLOCK, offset, size: BigInt(size), hash: new Uint8Array(32).fill(i) };
    offset += BigInt(size);
    return b;
  });
  const request: Request = {
    volume_version: 1n, cert_version: 1n, request_type: RequestType.PUTCHUNKS, volume_id: 1n, coordinator_id: PEER, file_id: 7n,
    file_version: 1n, fs_path: '/d/f', blocks, user_id: 1n, src_gateway_id: PEER, message_nonce: 99n, signature: '',
  };
  const good = Buffer.from(signMessage(request, RequestCodec.encode, key).bytes);
  t.is(outcome(good, config), 'ok', 'the unchanged request passes');
  fc.assert(fc.property(fc.array(fc.record({ at: fc.nat(), value: fc.nat(255) }), { minLength: 1, maxLength: 3 }), (edits) => {
    const bytes = Buffer.from(good);
    for (const e of edits) bytes[e.at % bytes.length] = e.value;
    fc.pre(!bytes.equals(good));
    return outcome(bytes, config) !== 'ok';
  }), { numRuns: 2000 });
});

test('the control plane may hold limits.max_blocks_per_request blocks at their widest; one more block is refused with 413 before it is decoded', (t) => {
  const { config, key } = setUp(t);
  const max = config.limits.max_blocks_per_request;
  const widest = (n: number): Buffer => {
    const blocks: ManifestBlock[] = Array.from({ length: n }, (_, i) => ({
      block_id: (1n << 64n) - 1n - BigInt(i), block_version: -(1n << 63n), hash: new Uint8Array(32), owner_id: (1n << 64n) - 1n, caps: 0xffffffff,
      chunk_type: -1, offset: 0n, size: 0n, logical_offset: (1n << 64n) - 1n, logical_len: (1n << 64n) - 1n,
    }));
    return Buffer.from(signMessage({
      volume_version: 1n, cert_version: 1n, request_type: RequestType.DELETECHUNKS, volume_id: 1n, coordinator_id: PEER, file_id: 7n,
      file_version: 1n, fs_path: `/${'d'.repeat(250)}/${'f'.repeat(250)}`, blocks, user_id: 1n, src_gateway_id: PEER, message_nonce: 1n, signature: '',
    }, RequestCodec.encode, key).bytes);
  };
  t.true(widest(max).length <= controlPlaneMax(config), `${widest(max).length} bytes fit in ${controlPlaneMax(config)}`);
  t.is(outcome(widest(max), config), 'ok');
  t.is(outcome(widest(max + 1), config), 413);
});
