// MACs on every call between actors, and on every reply. Redis is not trusted
// (docs/security.md, "What Redis access allows"): a client that can write to it could add a job to
// "<gateway>.write" or push a "write OK" onto an asker's reply list. Both sides of a call hold the
// gateway's private key (the http actor signs replies with it, driver actors open sealed secrets
// with it), so both derive the same HMAC keys from it with HKDF, one per purpose: a Redis client
// without the key can neither make a driver act nor answer in a driver's name.
//
// A call's MAC covers its mode, id, reply list, deadline, request bytes, arguments, rid, the
// SHA-256 and length of the chunk it carries and the SHA-256 of its shared block_vec. The MAC is
// over the hash, never the chunk bytes; the serving side checks the bytes against that hash when
// they came through Redis (serve.ts). How the chunk travels (inline, Redis key, host file) is not
// covered: the hash is.
// A reply's MAC covers the mode and the whole reply frame after the MAC slot (header and chunk).
import { createHmac, createSecretKey, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { CallData } from './ask.js';
import { DRIVER_MODES } from './names.js';

/**
 * Modes whose calls run only with a valid MAC: all of them. Those that change state (write,
 * delete, rename, refresh, a cache put) for what they would do; the others because a driver's
 * answer goes to whatever reply list the job names: a read would hand a Redis client any chunk,
 * a UG's deserialize would decrypt for it.
 */
export const MAC_MODES: ReadonlySet<string> = new Set([...DRIVER_MODES, 'cache']);

export const MAC_BYTES = 32;

/** Why a serving actor refused a call without running it; a small fixed set (a metric label). */
export type CallRefusalReason = 'no-mac' | 'bad-mac' | 'expired' | 'unhashed-chunk' | 'bad-block-vec' | 'altered-chunk';

export class JobMac {
  // KeyObjects, not Buffers: createHmac with a Buffer key imports it on every call (~2.4× the time
  // of a small call's MAC, measured here).
  private constructor(private readonly callKey: KeyObject, private readonly replyKey: KeyObject) {}

  /** The keys of one gateway, from its private key. */
  static forGateway(privateKey: KeyObject, gateway: string): JobMac {
    const ikm = privateKey.export({ type: 'pkcs8', format: 'der' });
    const derive = (purpose: string) => createSecretKey(Buffer.from(hkdfSync('sha256', ikm, 'sgw-redis-mac', `sgw ${purpose} mac v1 ${gateway}`, MAC_BYTES)));
    return new JobMac(derive('call'), derive('reply'));
  }

  /** Whether calls to this mode must carry a MAC. */
  needs(mode: string): boolean {
    return MAC_MODES.has(mode);
  }

  private callMac(mode: string, d: CallData): Buffer {
    const fields = [
      'call', mode, d.id, d.reply, d.deadline, d.req, d.sha256 ?? '', d.args ? JSON.stringify(d.args) : '',
      d.vouched === 1 ? `1 ${d.n ?? ''}` : '', d.vec ?? '', d.vsha ?? '', d.rid ?? '',
    ];
    // Each field prefixed with its length ("<length>:<field>"), so no two calls give the same text;
    // one update of one string: each update() is a trip into C++, a dozen of them cost more than the hash.
    let text = '';
    for (const field of fields) {
      const f = String(field); // a job written by hand may hold anything
      text += `${f.length}:${f}`;
    }
    return createHmac('sha256', this.callKey).update(text).digest();
  }

  /** The MAC an asker puts on a call (base64); set every other field first. */
  signCall(mode: string, d: CallData): string {
    return this.callMac(mode, d).toString('base64');
  }

  /**
   * Null when the call may run; else why not. A call that carries a chunk must name its SHA-256
   * (which the MAC covers and the serving side checks against the bytes).
   */
  checkCall(mode: string, d: CallData): CallRefusalReason | null {
    if (typeof d !== 'object' || d === null || typeof d.mac !== 'string') return 'no-mac';
    const given = Buffer.from(d.mac, 'base64');
    if (given.length !== MAC_BYTES || !timingSafeEqual(given, this.callMac(mode, d))) return 'bad-mac';
    const carriesChunk = d.chunk !== undefined || d.chunkKey !== undefined || d.blob !== undefined;
    if (carriesChunk && d.sha256 === undefined) return 'unhashed-chunk';
    return null;
  }

  /** The MAC of a reply frame's bytes after its MAC slot. */
  replyMac(mode: string, signed: Uint8Array): Buffer {
    return createHmac('sha256', this.replyKey).update(`${mode}\0`).update(signed).digest();
  }

  checkReply(mode: string, signed: Uint8Array, mac: Uint8Array): boolean {
    return mac.length === MAC_BYTES && timingSafeEqual(mac, this.replyMac(mode, signed));
  }
}
