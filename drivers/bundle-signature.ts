// Signed driver bundles. Redis is not trusted (docs/security.md, "What Redis access allows"): a
// bundle runs only when its manifest is signed with the gateway's private key, which every host
// that runs the gateway's drivers holds anyway (to open sealed secrets). The manifest names the
// gateway, the content hash (code, config and sealed secrets: drivers/bundle.ts bundleHash), the
// meta actors act on (methods, entry) and a publish sequence number, so no part can be swapped
// for another, another gateway's bundle cannot be replayed here, and an older manifest cannot
// take the place of a newer one (a watcher refuses a sequence below the one it runs).
import { createPublicKey, type KeyObject } from 'node:crypto';
import { signBytes, verifyBytes } from '../proto/signature.js';
import type { BundleMeta } from './bundle.js';

/** What the gateway's key vouches for. */
export interface BundleManifest {
  format: 'sgw-driver-bundle-manifest';
  v: 1;
  /** "rg.20": the gateway the bundle was published for. */
  gateway: string;
  /** The bundle hash (content version). */
  hash: string;
  /** Publish sequence: milliseconds since the epoch, above the sequence of the version it replaced. */
  seq: number;
  meta: BundleMeta;
}

/** Why a bundle was refused; a small fixed set (a metric label). */
export type BundleRefusalReason = 'unsigned' | 'malformed' | 'bad-signature' | 'wrong-gateway' | 'wrong-hash' | 'rollback';

export class BundleRefused extends Error {
  override name = 'BundleRefused';
  constructor(readonly reason: BundleRefusalReason, readonly hash: string, detail: string) {
    super(`driver bundle ${hash.slice(0, 12)} refused (${reason}): ${detail}`);
  }
}

/** The signed record as stored in the bundle's "signed" field: the manifest text and its signature. */
interface SignedRecord {
  manifest: string;
  signature: string;
}

/** The manifest as one text: JSON with fixed key order (it is parsed back, never re-encoded). */
function manifestText(m: BundleManifest): string {
  const meta = { methods: m.meta.methods, entry: m.meta.entry, builtAt: m.meta.builtAt };
  return JSON.stringify({ format: m.format, v: m.v, gateway: m.gateway, hash: m.hash, seq: m.seq, meta });
}

/** The "signed" field of a bundle published now for `gateway`. */
export function signBundle(gateway: string, hash: string, meta: BundleMeta, seq: number, privateKey: KeyObject): Buffer {
  const manifest = manifestText({ format: 'sgw-driver-bundle-manifest', v: 1, gateway, hash, seq, meta });
  const record: SignedRecord = { manifest, signature: signBytes(Buffer.from(manifest, 'utf8'), privateKey) };
  return Buffer.from(JSON.stringify(record));
}

function isMeta(v: unknown): v is BundleMeta {
  const m = v as Partial<BundleMeta> | null;
  return typeof m === 'object' && m !== null && Array.isArray(m.methods) && m.methods.every((x) => typeof x === 'string')
    && typeof m.entry === 'string' && typeof m.builtAt === 'string';
}

/**
 * Checks a bundle's signed record for the bundle `hash` of `gateway`; returns the manifest, whose
 * meta is the only one to act on. Throws BundleRefused. `floor`: the sequence of the version
 * running now; a lower one is a rollback (an equal one is the same publish).
 */
export function verifyBundle(signed: Buffer | null | undefined, gateway: string, hash: string, key: KeyObject, floor = 0): BundleManifest {
  if (!signed || signed.length === 0) throw new BundleRefused('unsigned', hash, 'it carries no signature');
  let record: Partial<SignedRecord>;
  let manifest: Partial<BundleManifest>;
  try {
    record = JSON.parse(signed.toString('utf8')) as Partial<SignedRecord>;
    if (typeof record.manifest !== 'string' || typeof record.signature !== 'string') throw new Error('fields');
    manifest = JSON.parse(record.manifest) as Partial<BundleManifest>;
  } catch {
    throw new BundleRefused('malformed', hash, 'its signed record is not readable');
  }
  const publicKey = key.type === 'public' ? key : createPublicKey(key);
  if (!verifyBytes(Buffer.from(record.manifest, 'utf8'), record.signature, publicKey)) {
    throw new BundleRefused('bad-signature', hash, "its manifest is not signed with this gateway's key");
  }
  if (manifest.format !== 'sgw-driver-bundle-manifest' || manifest.v !== 1 || !Number.isSafeInteger(manifest.seq) || !isMeta(manifest.meta)) {
    throw new BundleRefused('malformed', hash, 'its manifest lacks a field');
  }
  if (manifest.gateway !== gateway) throw new BundleRefused('wrong-gateway', hash, `it was signed for ${String(manifest.gateway)}`);
  if (manifest.hash !== hash) throw new BundleRefused('wrong-hash', hash, `its manifest names the content ${String(manifest.hash).slice(0, 12)}`);
  if (manifest.seq! < floor) {
    throw new BundleRefused('rollback', hash, `publish sequence ${manifest.seq} is older than the running version's ${floor}`);
  }
  return manifest as BundleManifest;
}

/** The sequence number for a publish now: the clock, but always above the current version's. */
export function nextSequence(currentSeq: number | null): number {
  return Math.max(Date.now(), (currentSeq ?? 0) + 1);
}
