// Reading an acquisition gateway the way a user gateway would: the namespace over HTTP, manifests
// and signed blocks over the data plane, every signature checked with Node's crypto directly
// (not through the project's verifier), so the AG's signing is checked independently.
import { constants, createHash, verify, type KeyObject } from 'node:crypto';
import { ManifestCodec, SignedBlockHeaderCodec, type Manifest, type SignedBlockHeader } from '../../proto/messages.js';
import { readTopLevelFields, lengthDelimitedField } from './hand-protobuf.js';
import { rawGet } from './gateway.js';

export interface EntryJson {
  path: string;
  type: 'file' | 'directory';
  file_id: string;
  file_version: string;
  size: number;
  mtime: { sec: string; nsec: number };
}

export async function stat(url: string, path: string): Promise<EntryJson | null> {
  const r = await fetch(`${url}/NAMESPACE${path}`);
  if (r.status === 404) return null;
  if (r.status !== 200) throw new Error(`stat ${path}: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { entry: EntryJson }).entry;
}

/** Every entry under a directory, following the pages. */
export async function list(url: string, path: string, limit = 2): Promise<EntryJson[]> {
  const out: EntryJson[] = [];
  let after: string | null = null;
  do {
    const q: string = `?list&limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ''}`;
    const r = await fetch(`${url}/NAMESPACE${path === '/' ? '' : path}${q}`);
    if (r.status !== 200) throw new Error(`list ${path}: ${r.status} ${await r.text()}`);
    const page = (await r.json()) as { entries: EntryJson[]; next: string | null };
    out.push(...page.entries);
    after = page.next;
  } while (after !== null);
  return out;
}

/** Verifies a Syndicate signature: the signature field set to "" in place, RSA-PSS SHA-256, salt 32. */
export function verifyIndependently(raw: Uint8Array, signatureField: number, key: KeyObject): boolean {
  const fields = readTopLevelFields(raw);
  const sig = fields.find((f) => f.number === signatureField);
  if (!sig || !(sig.value instanceof Uint8Array)) return false;
  const unsigned = Buffer.concat([raw.subarray(0, sig.start), lengthDelimitedField(signatureField, new Uint8Array()), raw.subarray(sig.end)]);
  return verify('sha256', unsigned, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, Buffer.from(Buffer.from(sig.value).toString(), 'base64'));
}

export function fileUrl(volume: bigint, e: EntryJson): string {
  return `/DATA/${volume}${e.path}.${e.file_id}.${e.file_version}`;
}

export async function getManifest(url: string, volume: bigint, e: EntryJson, key: KeyObject): Promise<Manifest> {
  const r = await rawGet(url, `${fileUrl(volume, e)}/manifest.${e.mtime.sec}.${e.mtime.nsec}`);
  if (r.status !== 200) throw new Error(`manifest of ${e.path}: ${r.status} ${r.body.toString()}`);
  if (!verifyIndependently(r.body, 10, key)) throw new Error(`manifest of ${e.path}: signature does not verify`);
  return ManifestCodec.decode(r.body);
}

export interface VerifiedBlock {
  header: SignedBlockHeader;
  data: Buffer;
}

/** GETs one block and checks it as a reader must: coordinator, signature, then hash. */
export async function getBlock(url: string, volume: bigint, e: EntryJson, m: Manifest, i: number, key: KeyObject): Promise<VerifiedBlock> {
  const b = m.blocks![i]!;
  const r = await rawGet(url, `${fileUrl(volume, e)}/${b.block_id}.${b.block_version}`);
  if (r.status !== 200) throw new Error(`block ${i} of ${e.path}: ${r.status} ${r.body.toString()}`);
  const len = r.body.readUInt32BE(0);
  const rawHeader = r.body.subarray(4, 4 + len);
  const data = r.body.subarray(4 + len);
  if (!verifyIndependently(rawHeader, 8, key)) throw new Error(`block ${i} of ${e.path}: header signature does not verify`);
  const header = SignedBlockHeaderCodec.decode(rawHeader);
  if (header.gateway_id !== m.coordinator_id) throw new Error(`block ${i}: signed by ${header.gateway_id}, not the coordinator`);
  if (!createHash('sha256').update(data).digest().equals(Buffer.from(header.block_hash))) throw new Error(`block ${i}: hash mismatch`);
  return { header, data };
}

/** The whole file through the AG: manifest, then every block, verified. */
export async function readFile(url: string, volume: bigint, e: EntryJson, key: KeyObject): Promise<Buffer> {
  const m = await getManifest(url, volume, e, key);
  const blocks = await Promise.all((m.blocks ?? []).map((_, i) => getBlock(url, volume, e, m, i, key)));
  return Buffer.concat(blocks.map((b) => b.data));
}
