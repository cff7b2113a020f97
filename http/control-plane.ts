// POST /: a signed Request in the control plane, chunks in the data plane. Checked before it is
// read, top to bottom: a share of the body budget (503) -> the body's envelope (413, 400) -> the
// control-plane part, which comes first and is bounded (413) -> decode (400) -> signature (401) ->
// volume, user, caps, coordinator (403, 503, 501) -> paths and blocks (400, 413) -> the data
// plane's bytes from the budget (503) -> the nonce (401) while the data plane is read and hashed
// (400) -> dispatch. Nothing reaches a driver before every check has passed; a request refused
// before its body was read is answered at once and its connection closed (refusal.ts).
import type { Context } from 'koa';
import type { KeyObject } from 'node:crypto';
import { GatewayTypeNumber, RequestType, ReplyCodec, type Request } from '../proto/messages.js';
import { signMessage } from '../proto/signature.js';
import type { GatewayConfig } from '../proto/config/config.js';
import { AuthRejection, HttpError, unavailable } from './errors.js';
import { BodySource } from './body-source.js';
import { boundaryOf, MultipartReader } from './multipart.js';
import { readChunks } from './data-plane.js';
import { PostShare, type PostBudget } from './post-budget.js';
import { closeAfterAnswer } from './refusal.js';
import { checkControlPlane, controlPlaneMax, type DataLayout } from './request-checks.js';
import { dispatch } from './post-dispatch.js';
import type { ChunkCache, DriverPipeline, PostCalls } from './driver-pipeline.js';

export interface ControlPlaneDeps {
  config: GatewayConfig;
  cache: ChunkCache;
  pipeline: DriverPipeline;
  /** Records (sender, nonce); false when it was seen within the replay window. */
  firstUse(sender: bigint, nonce: bigint): Promise<boolean>;
  /** Forgets (sender, nonce): the request was not carried out and may be sent again. */
  release(sender: bigint, nonce: bigint): Promise<void>;
}

/**
 * Whether the http actor checks the chunks' hashes itself. It does unless the request is a
 * PUTCHUNKS of one chunk: that chunk goes with its hash to the actor that first gets it
 * (deserialize or write), which checks it before its driver sees it, so a refusal there still
 * leaves nothing written. Hashing is the largest single cost of a 1 MiB POST in the http actor
 * (0.7 ms of ~4.5 ms), the busiest process: streaming does not change that cost, only when it is
 * paid. With several chunks one bad chunk must stop them all, and a RENAME_HINT renames before it
 * writes: both are checked here, before anything is dispatched.
 */
function hashedHere(request: Request): boolean {
  return !(request.request_type === RequestType.PUTCHUNKS && (request.blocks ?? []).length === 1);
}

/** The signed Reply; inline, since an RSA-2048 signature (~0.3 ms) costs less than a thread-pool trip. */
function signedReply(request: Request, errorCode: number, config: GatewayConfig, key: KeyObject): Uint8Array {
  return signMessage({
    volume_version: config.volume.version,
    cert_version: config.volume.cert_version,
    message_nonce: request.message_nonce,
    error_code: errorCode,
    user_id: config.gateway.user_id,
    gateway_id: config.gateway.id,
    gateway_type: BigInt(GatewayTypeNumber[config.gateway.type]),
    signature: '',
  }, ReplyCodec.encode, key).bytes;
}

/** The first part, which must be the control plane, read whole (at most `max` bytes). */
async function readControlPart(body: MultipartReader, max: number): Promise<Buffer> {
  const name = await body.nextPart();
  if (name !== 'control-plane') {
    throw new HttpError(400, name === null ? 'missing control-plane part' : `missing control-plane part: the first part is ${JSON.stringify(name.slice(0, 40))}`);
  }
  const pieces: Buffer[] = [];
  let got = 0;
  const length = await body.readContent((piece) => {
    got += piece.length;
    if (got > max) throw new HttpError(413, `the control-plane part exceeds its size limit (${max} bytes)`);
    pieces.push(piece);
  });
  if (length === 0) throw new HttpError(400, 'empty control-plane part');
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, length);
}

/** The data plane, cut into the layout's chunks (hashed here or not), and the end of the body. */
async function readDataPart(body: MultipartReader, layout: DataLayout, request: Request, hash: boolean): Promise<Buffer[]> {
  const name = await body.nextPart();
  let chunks: Buffer[] = [];
  if (name === 'control-plane') throw new HttpError(400, 'duplicate control-plane part');
  if (name !== null) {
    if (name !== 'data-plane') throw new HttpError(400, `unexpected part ${JSON.stringify(name.slice(0, 40))} after the control plane`);
    chunks = await readChunks(body, layout, hash ? (request.blocks ?? []).map((b) => b.hash!) : null);
    const after = await body.nextPart();
    if (after === 'data-plane') throw new HttpError(400, 'duplicate data-plane part');
    if (after !== null) throw new HttpError(400, `unexpected part ${JSON.stringify(after.slice(0, 40))} after the data plane`);
  } else if (layout.total > 0) {
    throw new HttpError(400, 'missing data-plane part');
  }
  await body.finish();
  return chunks;
}

export function postControlPlane(deps: ControlPlaneDeps, budget: PostBudget) {
  const { config } = deps;
  const { limits } = config;
  const controlMax = controlPlaneMax(config);

  return async (ctx: Context): Promise<void> => {
    const share = new PostShare(budget);
    ctx.res.once('close', () => share.release());
    const { req } = ctx;
    let source: BodySource | null = null;
    try {
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > limits.max_upload_bytes) {
        throw new HttpError(413, `body of ${declared} bytes exceeds limits.max_upload_bytes (${limits.max_upload_bytes})`);
      }
      // Before anything is read: room for what the control plane may need.
      const full = () => unavailable(`this gateway holds ${budget.inFlight} bytes of POST bodies (limits.post_bytes_in_flight): try again`);
      if (!share.grow(Math.min(Number.isFinite(declared) ? declared : controlMax, controlMax))) throw full();
      const body = new MultipartReader(source = new BodySource(req, { maxBytes: limits.max_upload_bytes, idleTimeoutMs: limits.body_idle_timeout_ms }), boundaryOf(req.headers['content-type']));

      const { request, sender, layout } = checkControlPlane(await readControlPart(body, controlMax), config);
      if (!share.grow(layout.total)) throw full();

      // The nonce travels to Redis while the data plane arrives; a replay stops the reading.
      const hashed = hashedHere(request);
      const replay = () => new AuthRejection(401, 'replay', `nonce ${request.message_nonce} of gateway ${sender.id} was already used (replay)`);
      const nonce = deps.firstUse(sender.id, request.message_nonce).then((fresh) => {
        if (!fresh) source!.fail(replay());
        return fresh;
      });
      const [fresh, read] = await Promise.allSettled([nonce, readDataPart(body, layout, request, hashed)]);
      if (fresh.status === 'rejected') throw unavailable(`cannot check the nonce: ${(fresh.reason as Error).message}`);
      if (!fresh.value) throw replay();
      if (read.status === 'rejected') {
        // Refused requests change nothing: the nonce recorded meanwhile is forgotten again.
        await deps.release(sender.id, request.message_nonce).catch(() => undefined);
        throw read.reason;
      }

      const post: PostCalls = { deadline: ctx.state.deadline as number, rid: ctx.state.requestId as string, changed: false };
      let rc: number;
      try {
        rc = await dispatch({ request, chunks: read.value, hashed }, { pipeline: deps.pipeline, cache: deps.cache, blockSize: config.gateway.block_size }, post);
      } catch (err) {
        // The sender may send the same signed bytes again only if nothing at all was done: once a
        // call that may change the back-end was sent, the request may have had an effect.
        if (!post.changed) await deps.release(sender.id, request.message_nonce).catch(() => undefined);
        throw err;
      }
      ctx.state.errorCode = rc;
      ctx.status = 200;
      ctx.type = 'application/octet-stream';
      ctx.body = Buffer.from(signedReply(request, rc, config, config.gateway.private_key));
    } catch (err) {
      source?.detach();
      closeAfterAnswer(ctx);
      throw err;
    }
  };
}
