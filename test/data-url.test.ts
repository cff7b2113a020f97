import test from 'ava';
import {
  BadUrlError, chunkCacheKey, chunkCacheKeyOfDriverRequest, formatBlockUrl, formatChunkUrl, formatFileId,
  formatManifestUrl, parseDataUrl, type BlockAddress, type ChunkAddress, type ManifestAddress,
} from '../http/data-url.js';
import { DriverRequestCodec, DriverRequestType, IoType, type DriverRequest } from '../proto/messages.js';

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

const bigBlock: BlockAddress = {
  kind: 'block',
  volume_id: U64_MAX,
  fs_path: '/photos/2024.summer/IMG.0001.jpg',
  file_id: (1n << 63n) + 0xabcdefn, // above 2^63: a signed parse would go negative
  file_version: -42n,
  block_id: (1n << 53n) + 1n, // above 2^53: a JS number would round it
  block_version: I64_MIN,
};

const bigManifest: ManifestAddress = {
  kind: 'manifest',
  volume_id: 1n,
  fs_path: '/a/b/c/d/e.tar.gz',
  file_id: U64_MAX,
  file_version: I64_MAX,
  mtime_sec: -1n,
  mtime_nsec: 999_999_999,
};

// ---- round trips ----

test('a block URL formats exactly as the original printf did and parses back', (t) => {
  const addr: BlockAddress = {
    kind: 'block', volume_id: 1n, fs_path: '/dir/x', file_id: 0xdeadbeefn, file_version: 5n, block_id: 3n, block_version: -7n,
  };
  const url = formatBlockUrl('http://rg.example:32780/', addr);
  t.is(url, 'http://rg.example:32780/DATA/1/dir/x.DEADBEEF.5/3.-7');
  t.deepEqual(parseDataUrl(new URL(url).pathname), addr);
});

test('a manifest URL formats as manifest.{sec}.{nsec} and parses back', (t) => {
  const addr: ManifestAddress = {
    kind: 'manifest', volume_id: 1n, fs_path: '/x', file_id: 0xdeadbeefn, file_version: 5n, mtime_sec: 100n, mtime_nsec: 5,
  };
  const url = formatManifestUrl('http://ag.example', addr);
  t.is(url, 'http://ag.example/DATA/1/x.DEADBEEF.5/manifest.100.5');
  t.deepEqual(parseDataUrl(new URL(url).pathname), addr);
});

test('64-bit ids above 2^53 and 2^63 and negative versions survive a round trip exactly', (t) => {
  for (const addr of [bigBlock, bigManifest] as ChunkAddress[]) {
    const url = formatChunkUrl('http://h', addr);
    t.deepEqual(parseDataUrl(new URL(url).pathname), addr, url);
  }
  t.is(formatChunkUrl('', bigBlock),
    '/DATA/18446744073709551615/photos/2024.summer/IMG.0001.jpg.8000000000ABCDEF.-42/9007199254740993.-9223372036854775808');
});

test('names with dots split at the last two dots of the file segment', (t) => {
  const addr = parseDataUrl('/DATA/7/my.dir/archive.tar.gz.1F.3/0.0');
  t.is(addr.fs_path, '/my.dir/archive.tar.gz');
  t.is(addr.file_id, 0x1fn);
  t.is(addr.file_version, 3n);
});

test('dot-leading names that are not . or .. are ordinary names', (t) => {
  t.is(parseDataUrl('/DATA/7/.config/.hidden.A.1/0.0').fs_path, '/.config/.hidden');
  t.is(parseDataUrl('/DATA/7/..x.A.1/0.0').fs_path, '/..x');
  t.is(parseDataUrl('/DATA/7/...x.A.1/0.0').fs_path, '/...x');
});

test('nested directories become the fs_path between the volume and the file segment', (t) => {
  const addr = parseDataUrl('/DATA/9/a/b/c/file.FF.-1/manifest.-5.0');
  t.deepEqual(addr, {
    kind: 'manifest', volume_id: 9n, fs_path: '/a/b/c/file', file_id: 0xffn, file_version: -1n, mtime_sec: -5n, mtime_nsec: 0,
  });
});

test('repeated, leading and trailing slashes are collapsed', (t) => {
  t.deepEqual(parseDataUrl('//DATA//1///dir//x.AB.1//2.3/'), parseDataUrl('/DATA/1/dir/x.AB.1/2.3'));
  t.is(parseDataUrl('//DATA//1///dir//x.AB.1//2.3/').fs_path, '/dir/x');
});

test('lower-case file ids are accepted and always formatted upper-case', (t) => {
  const addr = parseDataUrl('/DATA/1/x.deadBEEF.1/0.0');
  t.is(addr.file_id, 0xdeadbeefn);
  t.is(formatChunkUrl('', addr), '/DATA/1/x.DEADBEEF.1/0.0');
  t.is(formatFileId(0xabcn), 'ABC');
});

test('any base path may precede the first DATA segment; later DATA segments are directories', (t) => {
  const plain = parseDataUrl('/DATA/1/x.A.1/0.0');
  t.deepEqual(parseDataUrl('/gateways/rg-1/DATA/1/x.A.1/0.0'), plain);
  t.is(parseDataUrl('/DATA/1/DATA/x.A.1/0.0').fs_path, '/DATA/x');
  t.is(formatBlockUrl('http://h/gateways/rg-1/', plain as BlockAddress), 'http://h/gateways/rg-1/DATA/1/x.A.1/0.0');
});

test('leading zeros are accepted and normalised away', (t) => {
  const addr = parseDataUrl('/DATA/007/x.000A.0005/0001.-0002');
  t.deepEqual(addr, { kind: 'block', volume_id: 7n, fs_path: '/x', file_id: 10n, file_version: 5n, block_id: 1n, block_version: -2n });
  t.is(parseDataUrl('/DATA/1/x.0000000000000001.1/0.0').file_id, 1n);
});

test('extreme in-range values are accepted', (t) => {
  const max = parseDataUrl(`/DATA/${U64_MAX}/x.FFFFFFFFFFFFFFFF.${I64_MAX}/${U64_MAX}.${I64_MAX}`);
  t.deepEqual(max, { kind: 'block', volume_id: U64_MAX, fs_path: '/x', file_id: U64_MAX, file_version: I64_MAX, block_id: U64_MAX, block_version: I64_MAX });
  const min = parseDataUrl(`/DATA/0/x.0.${I64_MIN}/manifest.${I64_MIN}.0`);
  t.deepEqual(min, { kind: 'manifest', volume_id: 0n, fs_path: '/x', file_id: 0n, file_version: I64_MIN, mtime_sec: I64_MIN, mtime_nsec: 0 });
});

// ---- percent-encoding ----

test('path segments are percent-decoded one by one', (t) => {
  t.is(parseDataUrl('/DATA/1/my%20dir/f%C3%A9%3F.A.1/0.0').fs_path, '/my dir/fé?');
  t.is(parseDataUrl('/DATA/1/%44ATA/x.A.1/0.0').fs_path, '/DATA/x', 'an encoded DATA still counts as DATA only once');
});

test('a stray % that starts no escape is kept literally, as the original sent names unescaped', (t) => {
  t.is(parseDataUrl('/DATA/1/100%.txt.A.1/0.0').fs_path, '/100%.txt');
  t.is(parseDataUrl('/DATA/1/50%25%/x%2.A.1/0.0').fs_path, '/50%%/x%2');
});

test('names that need escaping are percent-encoded on format and decoded back', (t) => {
  const addr: BlockAddress = {
    kind: 'block', volume_id: 1n, fs_path: '/we ird/%41?#\\/日本.txt', file_id: 1n, file_version: 1n, block_id: 0n, block_version: 0n,
  };
  const url = formatBlockUrl('http://h', addr);
  t.is(url, 'http://h/DATA/1/we%20ird/%2541%3F%23%5C/%E6%97%A5%E6%9C%AC.txt.1.1/0.0');
  t.deepEqual(parseDataUrl(new URL(url).pathname), addr);
});

test("ordinary names with RFC 3986 sub-delims are formatted raw", (t) => {
  const addr: BlockAddress = {
    kind: 'block', volume_id: 1n, fs_path: "/a+b/c=d,e;f/it's(1)~:@$&!*", file_id: 1n, file_version: 1n, block_id: 0n, block_version: 0n,
  };
  t.is(formatBlockUrl('', addr), "/DATA/1/a+b/c=d,e;f/it's(1)~:@$&!*.1.1/0.0");
});

// ---- rejections ----

function rejects(t: import('ava').ExecutionContext, pathname: string, message: RegExp): void {
  const err = t.throws(() => parseDataUrl(pathname), { instanceOf: BadUrlError }, pathname);
  if (err) {
    t.regex(err.message, /^bad data URL: /, pathname);
    t.regex(err.message, message, pathname);
  }
}

test('a .. segment is rejected in every position', (t) => {
  for (const p of [
    '/../DATA/1/x.A.1/0.0',
    '/DATA/../1/x.A.1/0.0',
    '/DATA/1/../x.A.1/0.0',
    '/DATA/1/a/../x.A.1/0.0',
    '/DATA/1/a/b/../../x.A.1/0.0',
    '/DATA/1/x.A.1/../0.0',
    '/DATA/1/x.A.1/0.0/..',
    '/DATA/1/x.A.1/..',
    '/DATA/1/x.A.1/0.0/../',
  ]) rejects(t, p, /'\.\.'/);
});

test('a percent-encoded .. cannot smuggle a .. segment', (t) => {
  for (const p of ['/DATA/1/%2e%2e/x.A.1/0.0', '/DATA/1/%2E%2E/x.A.1/0.0', '/DATA/1/.%2e/x.A.1/0.0', '/DATA/1/%2e./x.A.1/0.0', '/DATA/1/x.A.1/0.0/%2e%2e']) {
    rejects(t, p, /'\.\.'/);
  }
});

test('a file named . or .. is rejected even though its segment is longer', (t) => {
  rejects(t, '/DATA/1/...A.1/0.0', /'\.\.' is not allowed as a file name/);
  rejects(t, '/DATA/1/..A.1/0.0', /'\.' is not allowed as a file name/);
  rejects(t, '/DATA/1/%2e%2e%2eA.1/0.0', /'\.\.' is not allowed as a file name/);
});

test('a . segment is rejected, encoded or not', (t) => {
  rejects(t, '/DATA/1/./x.A.1/0.0', /'\.'/);
  rejects(t, '/DATA/1/%2e/x.A.1/0.0', /'\.'/);
  rejects(t, '/./DATA/1/x.A.1/0.0', /'\.'/);
});

test('an encoded slash, NUL or control character is rejected', (t) => {
  rejects(t, '/DATA/1/a%2Fb/x.A.1/0.0', /encodes a '\/'/);
  rejects(t, '/DATA/1/a%2fb/x.A.1/0.0', /encodes a '\/'/);
  rejects(t, '/DATA/1/a%00b/x.A.1/0.0', /NUL or a control character/);
  rejects(t, '/DATA/1/a/x%0A.A.1/0.0', /NUL or a control character/);
});

test('percent-encoding that is not UTF-8 is rejected', (t) => {
  rejects(t, '/DATA/1/a%C3%28/x.A.1/0.0', /not valid UTF-8/);
  rejects(t, '/DATA/1/a%FF/x.A.1/0.0', /not valid UTF-8/);
});

test('raw whitespace, NUL, query strings and fragments are rejected', (t) => {
  rejects(t, '/DATA/1/a b/x.A.1/0.0', /whitespace or a control character/);
  rejects(t, '/DATA/1/a\tb/x.A.1/0.0', /whitespace or a control character/);
  rejects(t, '/DATA/1/a\u0000b/x.A.1/0.0', /whitespace or a control character/);
  rejects(t, '/DATA/1/x.A.1/0.0?x=1', /query string/);
  rejects(t, '/DATA/1/x.A.1/0.0#frag', /query string or fragment/);
});

test('a path without a DATA segment is rejected', (t) => {
  rejects(t, '/1/x.A.1/0.0', /no \/DATA\/ segment/);
  rejects(t, '/data/1/x.A.1/0.0', /no \/DATA\/ segment/);
  rejects(t, '/DATAx/1/x.A.1/0.0', /no \/DATA\/ segment/);
  rejects(t, '', /no \/DATA\/ segment/);
});

test('missing parts are named in the error', (t) => {
  rejects(t, '/DATA', /missing volume id/);
  rejects(t, '/DATA/', /missing volume id/);
  rejects(t, '/DATA/1', /missing file path/);
  rejects(t, '/DATA/1/x.A.1', /missing chunk/);
  rejects(t, '/DATA//x.A.1/0.0', /missing chunk/);
  rejects(t, '/DATA/1/x.A/0.0', /is not name\.FILEID\.version/);
  rejects(t, '/DATA/1/x/0.0', /is not name\.FILEID\.version/);
  rejects(t, '/DATA/1/.A.1/0.0', /empty file name/);
  rejects(t, '/DATA/1/x..1/0.0', /file id is empty/);
  rejects(t, '/DATA/1/x.A./0.0', /file version is empty/);
  rejects(t, '/DATA/1/x.A.1/0', /neither/);
  rejects(t, '/DATA/1/x.A.1/.0', /block id is empty/);
  rejects(t, '/DATA/1/x.A.1/0.', /block version is empty/);
  rejects(t, '/DATA/1/x.A.1/manifest', /neither/);
  rejects(t, '/DATA/1/x.A.1/manifest.5', /is not manifest\.\{mtime_sec\}\.\{mtime_nsec\}/);
  rejects(t, '/DATA/1/x.A.1/manifest.5.', /mtime_nsec is empty/);
  rejects(t, '/DATA/1/x.A.1/manifest..5', /mtime_sec is empty/);
});

test('a file id that is not hexadecimal or longer than 64 bits is rejected', (t) => {
  for (const id of ['XYZ', '0xAB', '-AB', '+AB', 'A B', 'AB%20', '10000000000000000', 'G']) {
    rejects(t, `/DATA/1/x.${id}.1/0.0`, /file id|whitespace/);
  }
});

test('numbers out of range for their type are rejected', (t) => {
  rejects(t, '/DATA/18446744073709551616/x.A.1/0.0', /volume id "18446744073709551616" is out of range for uint64/);
  rejects(t, '/DATA/1/x.A.1/18446744073709551616.0', /block id .* out of range for uint64/);
  rejects(t, '/DATA/1/x.A.9223372036854775808/0.0', /file version .* out of range for int64/);
  rejects(t, '/DATA/1/x.A.-9223372036854775809/0.0', /file version .* out of range for int64/);
  rejects(t, '/DATA/1/x.A.1/0.9223372036854775808', /block version .* out of range for int64/);
  rejects(t, '/DATA/1/x.A.1/manifest.-9223372036854775809.0', /mtime_sec .* out of range for int64/);
  rejects(t, '/DATA/1/x.A.1/0.123456789012345678901', /block version .* not a decimal integer/);
});

test('signs are refused on unsigned fields and + is refused everywhere', (t) => {
  rejects(t, '/DATA/-1/x.A.1/0.0', /volume id "-1" is not an unsigned decimal integer/);
  rejects(t, '/DATA/1/x.A.1/-1.0', /block id "-1" is not an unsigned/);
  rejects(t, '/DATA/+1/x.A.1/0.0', /volume id/);
  rejects(t, '/DATA/1/x.A.+1/0.0', /file version/);
  rejects(t, '/DATA/1/x.A.1/0.+1', /block version/);
  rejects(t, '/DATA/1/x.A.1/manifest.+1.0', /mtime_sec/);
  rejects(t, '/DATA/1/x.A.1/0.1e3', /block version/);
  rejects(t, '/DATA/1/x.A.1/0.--1', /block version/);
  rejects(t, '/DATA/1/x.A.1/0x1.0', /block id/);
  rejects(t, '/DATA/1/x.A.1/0.%201', /block version/);
});

test('a manifest mtime_nsec outside [0, 999999999] is rejected', (t) => {
  for (const nsec of ['1000000000', '-1', '1.5', 'abc', '+5', '9999999999']) {
    rejects(t, `/DATA/1/x.A.1/manifest.5.${nsec}`, /mtime_nsec/);
  }
});

test('formatting refuses addresses that would not parse back to themselves', (t) => {
  const ok: BlockAddress = { kind: 'block', volume_id: 1n, fs_path: '/x', file_id: 1n, file_version: 1n, block_id: 0n, block_version: 0n };
  for (const fs_path of ['x', '/', '/a//b', '/a/', '/a/../b', '/./a', '/a/..', '/a\u0000b', '']) {
    t.throws(() => formatBlockUrl('', { ...ok, fs_path }), { instanceOf: RangeError }, fs_path);
  }
  t.throws(() => formatBlockUrl('', { ...ok, volume_id: -1n }), { instanceOf: RangeError });
  t.throws(() => formatBlockUrl('', { ...ok, file_id: U64_MAX + 1n }), { instanceOf: RangeError });
  t.throws(() => formatBlockUrl('', { ...ok, block_version: I64_MAX + 1n }), { instanceOf: RangeError });
  t.throws(() => formatBlockUrl('', { ...ok, file_version: I64_MIN - 1n }), { instanceOf: RangeError });
  const m: ManifestAddress = { ...ok, kind: 'manifest', mtime_sec: 0n, mtime_nsec: 0 };
  for (const mtime_nsec of [-1, 1_000_000_000, 0.5, Number.NaN]) {
    t.throws(() => formatManifestUrl('', { ...m, mtime_nsec }), { instanceOf: RangeError }, String(mtime_nsec));
  }
  t.throws(() => formatBlockUrl('http://h/DATA', ok), { instanceOf: RangeError, message: /DATA/ });
  t.throws(() => formatBlockUrl('/x/DATA/', ok), { instanceOf: RangeError, message: /DATA/ });
  t.notThrows(() => formatBlockUrl('http://DATA:8080/DATAx', ok));
});

// ---- cache keys ----

test('the cache key names volume, file id, file version and the chunk, not the path', (t) => {
  const block = parseDataUrl('/DATA/1/dir/x.DEADBEEF.5/3.-7');
  const manifest = parseDataUrl('/DATA/1/dir/x.DEADBEEF.5/manifest.100.5');
  t.is(chunkCacheKey(block), '1:DEADBEEF:5:b:3.-7');
  t.is(chunkCacheKey(manifest), '1:DEADBEEF:5:m:100.5');
  t.is(chunkCacheKey(parseDataUrl('/DATA/1/renamed/elsewhere.deadbeef.5/3.-7')), '1:DEADBEEF:5:b:3.-7');
  t.not(chunkCacheKey(parseDataUrl('/DATA/1/dir/x.DEADBEEF.5/3.7')), chunkCacheKey(block));
  t.not(chunkCacheKey(parseDataUrl('/DATA/1/dir/x.DEADBEEF.-5/3.-7')), chunkCacheKey(block));
});

function driverRequestFor(addr: ChunkAddress, request_type: number): DriverRequest {
  const req: DriverRequest = {
    volume_id: addr.volume_id, user_id: 77n, coordinator_id: 3n, file_id: addr.file_id,
    // DriverRequest.file_version is uint64 on the wire: a negative version travels as 2^64 + v.
    file_version: BigInt.asUintN(64, addr.file_version),
    request_type, path: addr.fs_path, io_type: IoType.READ, io_context: 1n, block_size: 4096n,
  };
  if (addr.kind === 'block') return { ...req, block_id: addr.block_id, block_version: addr.block_version };
  return { ...req, manifest_mtime_sec: addr.mtime_sec, manifest_mtime_nsec: addr.mtime_nsec };
}

test('a DriverRequest for the same chunk has the same cache key, also after a wire round trip', (t) => {
  for (const [addr, type] of [
    [bigBlock, DriverRequestType.BLOCK],
    [bigManifest, DriverRequestType.MANIFEST],
    [{ ...bigManifest, file_version: -3n }, DriverRequestType.MANIFEST],
  ] as const) {
    const req = driverRequestFor(addr, type);
    t.is(chunkCacheKeyOfDriverRequest(req), chunkCacheKey(addr));
    t.is(chunkCacheKeyOfDriverRequest(DriverRequestCodec.decode(DriverRequestCodec.encode(req))), chunkCacheKey(addr));
  }
});

test('a RENAME_HINT DriverRequest keys the manifest named by its mtime', (t) => {
  const req = { ...driverRequestFor(bigManifest, DriverRequestType.RENAME_HINT), new_path: '/elsewhere' };
  t.is(chunkCacheKeyOfDriverRequest(req), chunkCacheKey(bigManifest));
});

test('a DriverRequest that does not name its chunk has no cache key', (t) => {
  const block = driverRequestFor(bigBlock, DriverRequestType.BLOCK);
  t.throws(() => chunkCacheKeyOfDriverRequest({ ...block, block_version: undefined }), { instanceOf: RangeError });
  const manifest = driverRequestFor(bigManifest, DriverRequestType.MANIFEST);
  t.throws(() => chunkCacheKeyOfDriverRequest({ ...manifest, manifest_mtime_nsec: undefined }), { instanceOf: RangeError });
  t.throws(() => chunkCacheKeyOfDriverRequest({ ...manifest, request_type: 9 }), { instanceOf: RangeError });
});

// ---- property-style checks ----

/** splitmix64: a tiny deterministic PRNG so failures reproduce. */
function prng(seed: bigint): () => bigint {
  let state = BigInt.asUintN(64, seed);
  return () => {
    state = BigInt.asUintN(64, state + 0x9e3779b97f4a7c15n);
    let z = state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    return z ^ (z >> 31n);
  };
}

const EDGE_U64 = [0n, 1n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n, I64_MAX, 1n << 63n, U64_MAX];
const NAME_PIECES = ['a', 'Z', '0', '.', '-', '_', ' ', '%', '%25', '?', '#', '+', '~', ':', '@', 'é', '日本', '😀', 'DATA', 'manifest', '\\', "'", '=', ';', ','];

function randomAddresses(seed: bigint, count: number): ChunkAddress[] {
  const next = prng(seed);
  const below = (n: number) => Number(next() % BigInt(n));
  const u64 = () => (below(4) === 0 ? EDGE_U64[below(EDGE_U64.length)]! : next());
  const i64 = () => BigInt.asIntN(64, u64());
  const name = () => {
    for (;;) {
      let s = '';
      const pieces = 1 + below(5);
      for (let i = 0; i < pieces; i++) s += NAME_PIECES[below(NAME_PIECES.length)];
      if (s !== '.' && s !== '..') return s;
    }
  };
  const out: ChunkAddress[] = [];
  for (let i = 0; i < count; i++) {
    const dirs = Array.from({ length: below(4) }, name);
    const file = { volume_id: u64(), fs_path: `/${[...dirs, name()].join('/')}`, file_id: u64(), file_version: i64() };
    out.push(below(2) === 0
      ? { ...file, kind: 'block', block_id: u64(), block_version: i64() }
      : { ...file, kind: 'manifest', mtime_sec: i64(), mtime_nsec: Number(next() % 1_000_000_000n) });
  }
  return out;
}

test('parse(format(address)) is the address, for random addresses (property)', (t) => {
  const bases = ['', 'http://rg.example:32780', 'http://h/base/path/', 'https://[::1]:8443/sg'];
  for (const [i, addr] of randomAddresses(0x5eedn, 2000).entries()) {
    const url = formatChunkUrl(bases[i % bases.length]!, addr);
    const pathname = url.startsWith('/') ? url : new URL(url).pathname;
    const parsed = parseDataUrl(pathname);
    if (JSON.stringify(parsed, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))
      !== JSON.stringify(addr, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))) {
      t.deepEqual(parsed, addr, url); // reports the first mismatch in full
      return;
    }
    if (chunkCacheKey(parsed) !== chunkCacheKey(addr)) t.fail(`cache key changed for ${url}`);
  }
  t.pass();
});

test('mutated URLs either parse to a safe fs_path or throw BadUrlError (property)', (t) => {
  const next = prng(0xbadn);
  const below = (n: number) => Number(next() % BigInt(n));
  const alphabet = ['/', '.', '..', '%2e', '%2f', '%00', '%', '-', '+', '0', '9', 'A', 'f', ' ', 'manifest', 'DATA', '%C3'];
  for (const addr of randomAddresses(0xf00dn, 1000)) {
    let url = formatChunkUrl('', addr);
    for (let m = 1 + below(3); m > 0; m--) {
      const at = below(url.length + 1);
      const cut = below(3);
      url = url.slice(0, at) + (below(2) === 0 ? alphabet[below(alphabet.length)] : '') + url.slice(at + cut);
    }
    let parsed: ChunkAddress;
    try {
      parsed = parseDataUrl(url);
    } catch (err) {
      if (!(err instanceof BadUrlError)) t.fail(`${url} threw ${String(err)}`);
      continue;
    }
    const segments = parsed.fs_path.split('/').slice(1);
    if (!parsed.fs_path.startsWith('/') || segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\u0000'))) {
      t.fail(`${url} parsed to unsafe fs_path ${JSON.stringify(parsed.fs_path)}`);
    }
    // Whatever parsed must format and parse back to itself.
    t.deepEqual(parseDataUrl(formatChunkUrl('', parsed)), parsed, url);
  }
});
