// The checks of a signed Request that need nothing but the Request and the configuration: who sent
// it (401), whether it may (403, 503, 501), its paths (400), and its blocks: how many (413), no chunk
// twice, and how they lie in the data plane (400). Each throws an HttpError or passes; all of them
// run before a byte of the data plane is read.
import {
  Caps, ChunkType, countRequestBlocks, RequestCodec, RequestType, SignatureField, type Request,
} from '../proto/messages.js';
import { verifyRawMessage } from '../proto/signature.js';
import type { GatewayConfig, PeerGateway } from '../proto/config/config.js';
import type { GatewayType } from '../queues/names.js';
import { fsPathProblem } from './data-url.js';
import { AuthRejection, HttpError, unavailable } from './errors.js';

const GATEWAY_NAMES: Record<GatewayType, string> = { RG: 'replica gateway', AG: 'acquisition gateway', UG: 'user gateway' };

/** The requests each gateway type serves, with the capabilities the sender needs (WIRE.md). */
const NEEDED_CAPS: Record<GatewayType, Partial<Record<number, number>>> = {
  RG: {
    [RequestType.PUTCHUNKS]: Caps.WRITE_DATA,
    [RequestType.DELETECHUNKS]: Caps.WRITE_DATA,
    [RequestType.RENAME_HINT]: Caps.WRITE_DATA | Caps.WRITE_METADATA,
  },
  AG: { [RequestType.REFRESH]: Caps.READ_DATA | Caps.READ_METADATA },
  UG: {},
};

/** Bytes a ManifestBlock may take in an encoded Request (every field at its widest, plus its tag and length). */
export const ENCODED_BLOCK_MAX = 136;
/** Room for the rest of a Request (paths, signature, ...). */
const REQUEST_BASE_MAX = 64 << 10;

/** Most bytes a control-plane part may have: a Request naming limits.max_blocks_per_request blocks. */
export function controlPlaneMax(config: GatewayConfig): number {
  return REQUEST_BASE_MAX + ENCODED_BLOCK_MAX * config.limits.max_blocks_per_request;
}

/**
 * 413 for a control plane naming more blocks than limits.max_blocks_per_request, found by counting
 * its `blocks` fields without decoding them: a megabyte of the smallest possible blocks would
 * otherwise cost a decode of ~350,000 of them before anything else is checked.
 */
export function checkBlockCount(control: Uint8Array, config: GatewayConfig): void {
  const max = config.limits.max_blocks_per_request;
  const n = countRequestBlocks(control, max + 1);
  if (n > max) throw new HttpError(413, `the request names more than ${max} blocks (limits.max_blocks_per_request)`);
}

export function authenticate(raw: Buffer, request: Request, config: GatewayConfig): PeerGateway {
  const sender = config.volume.gateways.get(request.src_gateway_id);
  if (!sender) throw new AuthRejection(401, 'unknown_sender', `unknown sender gateway ${request.src_gateway_id}`);
  if (!verifyRawMessage(raw, SignatureField.Request, sender.public_key)) {
    throw new AuthRejection(401, 'bad_signature', `signature of gateway ${sender.id} does not verify`);
  }
  return sender;
}

export function authorize(request: Request, sender: PeerGateway, config: GatewayConfig): void {
  if (request.volume_id !== config.gateway.volume_id) throw new AuthRejection(403, 'wrong_volume', `volume ${request.volume_id} is not served here`);
  if (request.user_id !== sender.user_id) throw new AuthRejection(403, 'wrong_user', `gateway ${sender.id} does not act for user ${request.user_id}`);
  if (request.volume_version > config.volume.version || request.cert_version > config.volume.cert_version) {
    throw unavailable('the sender has a newer volume or certificate version than this gateway');
  }
  const type = config.gateway.type;
  const needed = NEEDED_CAPS[type][request.request_type];
  if (needed === undefined) throw new HttpError(501, `request type ${request.request_type} is not handled by a ${GATEWAY_NAMES[type]}`);
  if ((sender.caps & needed) !== needed) throw new AuthRejection(403, 'missing_caps', `gateway ${sender.id} lacks the capabilities for this request`);
  const hasManifest = (request.blocks ?? []).some((b) => b.chunk_type === ChunkType.MANIFEST);
  if (hasManifest && request.coordinator_id !== request.src_gateway_id) {
    throw new AuthRejection(403, 'not_coordinator', 'a manifest may only be sent by the coordinator of its file');
  }
}

/** fs_path and new_fs_path follow the rules of paths in data URLs (a REFRESH may name the root). */
export function checkPaths(request: Request): void {
  const problem = fsPathProblem(request.fs_path, request.request_type === RequestType.REFRESH);
  if (problem) throw new HttpError(400, `fs_path ${JSON.stringify(request.fs_path.slice(0, 64))} ${problem}`);
  if (request.request_type === RequestType.RENAME_HINT && !request.new_fs_path) throw new HttpError(400, 'RENAME_HINT without new_fs_path');
  if (request.new_fs_path !== undefined) {
    const bad = fsPathProblem(request.new_fs_path);
    if (bad) throw new HttpError(400, `new_fs_path ${JSON.stringify(request.new_fs_path.slice(0, 64))} ${bad}`);
  }
}

/** Where the chunks of a request lie in its data plane: chunk i is sizes[i] bytes, back to back from 0. */
export interface DataLayout {
  sizes: number[];
  /** The data plane's length: the sum of sizes. */
  total: number;
}

const NO_DATA: DataLayout = { sizes: [], total: 0 };

/**
 * Checks the blocks a request names and returns how its chunks lie in the data plane. At most
 * limits.max_blocks_per_request (413); none twice (400: two copies of one chunk in a request could
 * only disagree); and, for requests that carry chunks, each with its SHA-256, tiling the data plane
 * exactly: in order, no gap, no overlap (400: overlapping blocks would let a small request write
 * the same bytes many times over).
 */
export function checkBlocks(request: Request, config: GatewayConfig): DataLayout {
  if (request.request_type === RequestType.REFRESH) return NO_DATA; // names a path, not chunks
  const blocks = request.blocks ?? [];
  if (blocks.length === 0) throw new HttpError(400, 'the request names no blocks');
  const max = config.limits.max_blocks_per_request;
  if (blocks.length > max) throw new HttpError(413, `the request names ${blocks.length} blocks; at most ${max} are accepted (limits.max_blocks_per_request)`);
  if (request.request_type === RequestType.RENAME_HINT && blocks.length !== 1) throw new HttpError(400, 'RENAME_HINT carries exactly one manifest chunk');
  const seen = new Set<string>();
  for (const [i, b] of blocks.entries()) {
    const key = `${b.chunk_type === ChunkType.MANIFEST ? 'm' : 'b'}${b.block_id}.${b.block_version}`;
    if (seen.has(key)) throw new HttpError(400, `block ${i} names the same chunk as an earlier block (${b.block_id}.${b.block_version})`);
    seen.add(key);
  }
  if (request.request_type === RequestType.DELETECHUNKS) return NO_DATA;
  const limit = BigInt(config.limits.max_upload_bytes);
  const sizes: number[] = [];
  let end = 0n;
  for (const [i, b] of blocks.entries()) {
    if (b.offset === undefined || b.size === undefined) throw new HttpError(400, `block ${i} has no offset/size in the data plane`);
    if (!b.hash || b.hash.length !== 32) throw new HttpError(400, `block ${i} has no SHA-256 hash`);
    if (b.offset !== end) {
      throw new HttpError(400, `block ${i} starts at byte ${b.offset} of the data plane, not at ${end} where the one before it ends: blocks must tile the data plane in order`);
    }
    end += b.size;
    if (end > limit) throw new HttpError(413, `the blocks reach beyond limits.max_upload_bytes (${limit}) of data plane`);
    sizes.push(Number(b.size));
  }
  return { sizes, total: Number(end) };
}

/** A control plane that passed every check, and where its chunks lie. */
export interface CheckedRequest {
  request: Request;
  sender: PeerGateway;
  layout: DataLayout;
}

/** Every check of an encoded control plane, in order: the POST path runs this before it reads the data plane. */
export function checkControlPlane(control: Buffer, config: GatewayConfig): CheckedRequest {
  checkBlockCount(control, config);
  const request = RequestCodec.decode(control);
  const sender = authenticate(control, request, config);
  authorize(request, sender, config);
  checkPaths(request);
  return { request, sender, layout: checkBlocks(request, config) };
}
