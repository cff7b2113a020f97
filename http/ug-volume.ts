// The volume as a user gateway sees it: its peers (who coordinates a file, which replicas hold
// its chunks, whose key signs what), the DriverRequests the UG's own driver is called with, the
// cdn_url rewrite every outgoing GET goes through, and bounded HTTP GETs.
import type { KeyObject } from 'node:crypto';
import type { GatewayConfig, PeerGateway } from '../proto/config/config.js';
import type { Namespace, NamespaceEntry } from '../queues/namespace/namespace.js';
import { DriverRequestType, type DriverRequest } from '../proto/messages.js';
import type { GatewayType } from '../queues/names.js';
import { HttpError } from './errors.js';
import { Errno } from '../drivers/errno.js';
import { randomIoContext, type ChunkCache, type DriverPipeline } from './driver-pipeline.js';
import { setChunkFields, type ChunkFields } from './get-chunk.js';
import { exchange, ExchangeError, isNoAnswer } from './outgoing.js';

export interface UgDeps {
  config: GatewayConfig;
  namespace: Namespace;
  /** This UG's chunk store: verified, deserialized blocks. */
  cache: ChunkCache;
  pipeline: DriverPipeline;
}

/** Which version of which file a chunk belongs to (a namespace entry carries all of it). */
export type FileOf = Pick<NamespaceEntry, 'path' | 'file_id' | 'file_version' | 'coordinator_id'>;

export type ChunkOf = ChunkFields;

/** A gateway that serves a file's chunks. */
export interface ChunkSource {
  id: bigint;
  type: GatewayType;
  url: string;
}

export class UgVolume {
  readonly config: GatewayConfig;
  readonly blockSize: number;
  /** Replica gateways with a URL, in config order: every write goes to each of them. */
  readonly replicas: (PeerGateway & { url: string })[];

  constructor(readonly deps: UgDeps) {
    this.config = deps.config;
    this.blockSize = deps.config.gateway.block_size;
    this.replicas = [...deps.config.volume.gateways.values()].filter((p): p is PeerGateway & { url: string } => p.type === 'RG' && p.url !== null);
  }

  get id(): bigint {
    return this.config.gateway.id;
  }

  /** The gateway type of a file's coordinator ('UG' for this gateway itself), or null if unknown. */
  coordinatorType(coordinator: bigint): GatewayType | null {
    if (coordinator === this.id) return 'UG';
    return this.config.volume.gateways.get(coordinator)?.type ?? null;
  }

  /** The key a file's manifest (and an AG's block headers) must be signed with. */
  coordinatorKey(coordinator: bigint): KeyObject {
    if (coordinator === this.id) return this.config.gateway.public_key;
    const peer = this.config.volume.gateways.get(coordinator);
    if (!peer) throw new HttpError(502, `the file's coordinator, gateway ${coordinator}, is not a peer of this volume`);
    return peer.public_key;
  }

  /** Where a file's chunks may be fetched, in order: its coordinator if it serves data, then the replicas. */
  sourcesOf(file: FileOf): ChunkSource[] {
    const out: ChunkSource[] = [];
    const coord = this.config.volume.gateways.get(file.coordinator_id);
    // A UG coordinator keeps no chunks of its own: they live on the replicas.
    if (coord && coord.url && coord.type !== 'UG') out.push({ id: coord.id, type: coord.type, url: coord.url });
    for (const r of this.replicas) if (r.id !== coord?.id) out.push({ id: r.id, type: r.type, url: r.url });
    return out;
  }

  /** Chunks a UG wrote went through a UG's serialize; an AG's come as the AG made them. */
  isUgFile(file: FileOf): boolean {
    return this.coordinatorType(file.coordinator_id) === 'UG';
  }

  /** The DriverRequest for one chunk of a file (WIRE.md: "How a gateway fills it"). */
  driverRequest(file: FileOf, chunk: ChunkOf, ioType: number): DriverRequest {
    const g = this.config.gateway;
    const req: DriverRequest = {
      volume_id: g.volume_id, user_id: g.user_id, coordinator_id: file.coordinator_id,
      file_id: file.file_id, file_version: BigInt.asUintN(64, file.file_version),
      request_type: chunk.kind === 'block' ? DriverRequestType.BLOCK : DriverRequestType.MANIFEST,
      path: file.path, io_type: ioType, io_context: randomIoContext(), block_size: BigInt(this.blockSize),
    };
    return setChunkFields(req, chunk);
  }

  /** A deadline for one step (a driver call, a GET, a POST). */
  stepDeadline(): number {
    return Date.now() + this.config.limits.call_timeout_ms;
  }

  /** The URL to GET instead of `url`: the driver's cdn_url, or `url` itself when it has none. */
  async routeUrl(url: string, req: DriverRequest): Promise<string> {
    if (!this.deps.pipeline.has('cdn_url')) return url;
    const r = await this.deps.pipeline.call('cdn_url', req, this.stepDeadline(), undefined, { args: [url] });
    if (r.rc !== 0 || !r.value) throw new HttpError(502, `the driver's cdn_url gave no URL for ${url} (rc ${r.rc}${r.error ? `: ${r.error}` : ''})`);
    return r.value;
  }

  /** serialize (before a chunk leaves) or deserialize (after it arrived and verified); passes bytes through when the driver lacks it. */
  async transform(mode: 'serialize' | 'deserialize', req: DriverRequest, chunk: Buffer): Promise<Buffer> {
    if (!this.deps.pipeline.has(mode)) return chunk;
    const r = await this.deps.pipeline.call(mode, req, this.stepDeadline(), undefined, { chunk });
    if (r.rc === -Errno.EBADMSG && mode === 'deserialize') throw new ChunkRejected(UNDECODABLE);
    if (r.rc !== 0) throw new ChunkRejected(`${mode} failed (rc ${r.rc}${r.error ? `: ${r.error}` : ''})`);
    return r.chunk ?? Buffer.alloc(0);
  }

  /** GET with a deadline; throws on network errors, returns any status. */
  async get(url: string): Promise<{ status: number; body: Buffer }> {
    try {
      return await exchange(url, { method: 'GET', timeoutMs: this.config.limits.call_timeout_ms });
    } catch (err) {
      // No answer in time, or a cut connection: the gateway did not fail, it may serve later.
      throw new ChunkRejected(`GET ${url}: ${err instanceof ExchangeError && err.code ? err.code : (err as Error).message}`, isNoAnswer(err));
    }
  }
}

/**
 * Why a verified chunk may still not decode: the UG's driver changed after it was written. The
 * usual case is the encrypting driver turned on (or its KEY changed) over files written before.
 */
const UNDECODABLE = 'the UG driver\'s deserialize refused the chunk (EBADMSG): it does not decrypt '
  + '(or decode) with the driver this UG runs now. Files written before that driver or its key was published stay unreadable '
  + 'through it: read them with the driver (or KEY) they were written with';

/** A chunk that is not what the manifest (or its signature) says, or that the driver could not transform: try the next gateway; 502 when none is left. */
export class ChunkRejected extends HttpError {
  override name = 'ChunkRejected';
  /** busy: the gateway said "try again" (503) or did not answer in time, it did not fail. */
  constructor(message: string, readonly busy = false) {
    super(502, message);
  }
}
