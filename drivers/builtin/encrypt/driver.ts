// The built-in user gateway (UG) encrypting driver: serialize seals every chunk (blocks and
// manifests) with AES-256-GCM before it leaves the UG, deserialize opens it after it arrived and
// its hash was checked, so replica gateways only ever store ciphertext. The key comes from the
// driver's sealed secrets ({"KEY": "<64 hex digits>"}, sealed with `sgw secrets seal`).
// Copy this folder to start a UG driver: it works as it is, wherever it is copied.
//
// Chunk layout: 12-byte random IV | ciphertext | 16-byte GCM tag. The chunk's storage path
// (volume, file id, block id and version, or manifest mtime) is authenticated as associated data,
// so a replica cannot pass off one chunk as another.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Errno, log_error, request_to_storage_path, type DriverConfig, type DriverRequest, type DriverSecrets } from 'sgw';

const IV_BYTES = 12;
const TAG_BYTES = 16;
let key: Buffer | null = null;

export function driver_init(_config: DriverConfig, secrets: DriverSecrets): boolean {
  const hex = secrets?.KEY;
  if (typeof hex !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hex)) {
    log_error('encrypt driver: the sealed secrets must hold KEY, 64 hex digits (32 bytes)');
    return false;
  }
  key = Buffer.from(hex, 'hex');
  return true;
}

export function serialize(request: DriverRequest, chunk: Buffer): Buffer | number {
  if (!key) return -Errno.EINVAL;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(request_to_storage_path(request)));
  return Buffer.concat([iv, cipher.update(chunk), cipher.final(), cipher.getAuthTag()]);
}

export function deserialize(request: DriverRequest, chunk: Buffer): Buffer | number {
  if (!key) return -Errno.EINVAL;
  if (chunk.length < IV_BYTES + TAG_BYTES) return -Errno.EBADMSG;
  const decipher = createDecipheriv('aes-256-gcm', key, chunk.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(request_to_storage_path(request)));
  decipher.setAuthTag(chunk.subarray(chunk.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(chunk.subarray(IV_BYTES, chunk.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return -Errno.EBADMSG; // wrong key, or the chunk was altered
  }
}
