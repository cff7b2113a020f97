// Sealing a driver's secrets.json for one gateway, so that the bundle can travel through Redis
// and only that gateway (its private key) can read them. Hybrid encryption: a random AES-256-GCM
// key encrypts the secrets and is itself wrapped with RSA-OAEP-SHA-256. The sealed form is a small
// JSON document so an operator can see what it is and for which key it was sealed.
import {
  constants, createCipheriv, createDecipheriv, createHash, createPublicKey, generateKeyPairSync,
  privateDecrypt, publicEncrypt, randomBytes, type KeyObject,
} from 'node:crypto';

export class SecretsError extends Error {
  override name = 'SecretsError';
}

/** The sealed document, every binary field as standard base64. */
export interface SealedSecrets {
  format: 'sgw-sealed-secrets';
  version: 1;
  key_alg: 'RSA-OAEP-SHA256';
  cipher: 'AES-256-GCM';
  /** SHA-256 of the gateway public key (SPKI DER), hex: says which key can open it. */
  key_id: string;
  wrapped_key: string;
  iv: string;
  tag: string;
  ciphertext: string;
}

const OAEP = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' } as const;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** SHA-256 hex of a key's public half (SPKI DER); the same for a private key and its public key. */
export function publicKeyId(key: KeyObject): string {
  const publicKey = key.type === 'public' ? key : createPublicKey(key);
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex');
}

function requireRsa(key: KeyObject): void {
  if (key.asymmetricKeyType !== 'rsa') throw new SecretsError(`secrets need an RSA key, got ${key.asymmetricKeyType ?? key.type}`);
}

// Everything but the GCM outputs is authenticated as associated data, so no header field can be
// swapped without the tag failing.
function associatedData(doc: Pick<SealedSecrets, 'format' | 'version' | 'key_alg' | 'cipher' | 'key_id' | 'wrapped_key' | 'iv'>): Buffer {
  return Buffer.from(JSON.stringify([doc.format, doc.version, doc.key_alg, doc.cipher, doc.key_id, doc.wrapped_key, doc.iv]));
}

/** Encrypts plaintext (the secrets.json bytes) so that only the holder of the matching private key can read it. */
export function sealSecrets(plaintext: Buffer, gatewayPublicKey: KeyObject): Buffer {
  requireRsa(gatewayPublicKey);
  const contentKey = randomBytes(32);
  const iv = randomBytes(IV_BYTES);
  const header = {
    format: 'sgw-sealed-secrets', version: 1, key_alg: 'RSA-OAEP-SHA256', cipher: 'AES-256-GCM',
    key_id: publicKeyId(gatewayPublicKey),
    wrapped_key: publicEncrypt({ key: gatewayPublicKey, ...OAEP }, contentKey).toString('base64'),
    iv: iv.toString('base64'),
  } as const;
  const cipher = createCipheriv('aes-256-gcm', contentKey, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(header));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const doc: SealedSecrets = { ...header, tag: cipher.getAuthTag().toString('base64'), ciphertext: ciphertext.toString('base64') };
  return Buffer.from(JSON.stringify(doc, null, 2) + '\n');
}

// Buffer.from(s, 'base64') skips bad characters and ignores trailing bits; only canonical
// base64 is accepted, so every edit of the text is an edit of the bytes.
function strictBase64(doc: Record<string, unknown>, field: string): Buffer {
  const text = doc[field];
  if (typeof text !== 'string') throw new SecretsError(`sealed secrets: ${field} is missing`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) throw new SecretsError(`sealed secrets: ${field} is not valid base64`);
  return bytes;
}

/** Parses and checks the shape of a sealed document (no decryption). */
export function parseSealedSecrets(sealed: Buffer): SealedSecrets {
  let doc: unknown;
  try {
    doc = JSON.parse(sealed.toString('utf8'));
  } catch {
    throw new SecretsError('sealed secrets are not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new SecretsError('sealed secrets are not a JSON object');
  const d = doc as Record<string, unknown>;
  if (d.format !== 'sgw-sealed-secrets') throw new SecretsError('not a sealed secrets document (format field)');
  if (d.version !== 1) throw new SecretsError(`sealed secrets version ${String(d.version)} is not supported`);
  if (d.key_alg !== 'RSA-OAEP-SHA256' || d.cipher !== 'AES-256-GCM') {
    throw new SecretsError(`sealed secrets use ${String(d.key_alg)}/${String(d.cipher)}, expected RSA-OAEP-SHA256/AES-256-GCM`);
  }
  if (typeof d.key_id !== 'string' || !/^[0-9a-f]{64}$/.test(d.key_id)) throw new SecretsError('sealed secrets: key_id is malformed');
  if (strictBase64(d, 'iv').length !== IV_BYTES) throw new SecretsError('sealed secrets: iv has the wrong length');
  if (strictBase64(d, 'tag').length !== TAG_BYTES) throw new SecretsError('sealed secrets: tag has the wrong length');
  strictBase64(d, 'wrapped_key');
  strictBase64(d, 'ciphertext');
  return d as unknown as SealedSecrets;
}

/** Decrypts sealed secrets; throws SecretsError for another gateway's key or any tampering. */
export function unsealSecrets(sealed: Buffer, gatewayPrivateKey: KeyObject): Buffer {
  if (gatewayPrivateKey.type !== 'private') throw new SecretsError('unsealing needs the gateway private key');
  requireRsa(gatewayPrivateKey);
  const doc = parseSealedSecrets(sealed);
  const ownId = publicKeyId(gatewayPrivateKey);
  if (doc.key_id !== ownId) {
    throw new SecretsError(`secrets were sealed for key ${doc.key_id.slice(0, 16)}…, this gateway's key is ${ownId.slice(0, 16)}…`);
  }
  let contentKey: Buffer;
  try {
    contentKey = privateDecrypt({ key: gatewayPrivateKey, ...OAEP }, Buffer.from(doc.wrapped_key, 'base64'));
  } catch {
    throw new SecretsError('sealed secrets: the wrapped key does not open with this gateway key (tampered?)');
  }
  if (contentKey.length !== 32) throw new SecretsError('sealed secrets: the wrapped key has the wrong length');
  try {
    const decipher = createDecipheriv('aes-256-gcm', contentKey, Buffer.from(doc.iv, 'base64'), { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(doc));
    decipher.setAuthTag(Buffer.from(doc.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(doc.ciphertext, 'base64')), decipher.final()]);
  } catch {
    throw new SecretsError('sealed secrets failed authentication: they were altered or are corrupt');
  }
}

/** A new gateway RSA key pair: private key as PKCS#8 PEM, public key as SPKI PEM. */
export function generateKeyPair(bits = 4096): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privatePem: privateKey, publicPem: publicKey };
}
