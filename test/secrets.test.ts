// Specification of sealed driver secrets: only the gateway's private key opens them, and any
// change to the sealed document is refused with a SecretsError.
import test from 'ava';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { generateKeyPair, parseSealedSecrets, publicKeyId, sealSecrets, SecretsError, unsealSecrets, type SealedSecrets } from '../drivers/secrets.js';
import { parsePrivateKey, parsePublicKey } from '../proto/signature.js';

// 2048-bit keys keep the suite fast; the default size is checked once below.
const gateway = generateKeyPair(2048);
const other = generateKeyPair(2048);
const gatewayPrivate = parsePrivateKey(gateway.privatePem);
const gatewayPublic = parsePublicKey(gateway.publicPem);
const secretsJson = Buffer.from(JSON.stringify({ AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG', token: 'é✓' }));

function edit(sealed: Buffer, change: (doc: SealedSecrets) => void): Buffer {
  const doc = JSON.parse(sealed.toString()) as SealedSecrets;
  change(doc);
  return Buffer.from(JSON.stringify(doc));
}

/** Flips one bit of a base64 field's bytes and re-encodes it, so the text stays valid base64. */
function flipBit(b64: string, byte = 0): string {
  const bytes = Buffer.from(b64, 'base64');
  bytes[byte] ^= 0x01;
  return bytes.toString('base64');
}

test('generateKeyPair gives PKCS#8 and SPKI PEM, 4096 bits by default', (t) => {
  t.regex(gateway.privatePem, /^-----BEGIN PRIVATE KEY-----\n/);
  t.regex(gateway.publicPem, /^-----BEGIN PUBLIC KEY-----\n/);
  const big = generateKeyPair();
  t.is(createPublicKey(big.publicPem).asymmetricKeyDetails?.modulusLength, 4096);
});

test('sealed secrets open with the gateway private key and give back the exact bytes', (t) => {
  const sealed = sealSecrets(secretsJson, gatewayPublic);
  t.true(unsealSecrets(sealed, gatewayPrivate).equals(secretsJson));
  t.true(unsealSecrets(sealSecrets(Buffer.alloc(0), gatewayPublic), gatewayPrivate).equals(Buffer.alloc(0)));
});

test('the sealed form is an inspectable JSON document that does not contain the secrets', (t) => {
  const sealed = sealSecrets(secretsJson, gatewayPublic);
  const doc = parseSealedSecrets(sealed);
  t.like(doc, { format: 'sgw-sealed-secrets', version: 1, key_alg: 'RSA-OAEP-SHA256', cipher: 'AES-256-GCM', key_id: publicKeyId(gatewayPublic) });
  t.is(Buffer.from(doc.iv, 'base64').length, 12);
  t.is(Buffer.from(doc.tag, 'base64').length, 16);
  t.is(Buffer.from(doc.wrapped_key, 'base64').length, 256);
  t.false(sealed.toString().includes('wJalrXUtnFEMI'));
  t.not(sealSecrets(secretsJson, gatewayPublic).toString(), sealed.toString(), 'each sealing uses a fresh key and iv');
});

test('keys load as PKCS#1 as well as PKCS#8/SPKI', (t) => {
  const pkcs1Private = gatewayPrivate.export({ type: 'pkcs1', format: 'pem' }).toString();
  const pkcs1Public = gatewayPublic.export({ type: 'pkcs1', format: 'pem' }).toString();
  t.regex(pkcs1Private, /BEGIN RSA PRIVATE KEY/);
  t.regex(pkcs1Public, /BEGIN RSA PUBLIC KEY/);
  const sealedForPkcs1 = sealSecrets(secretsJson, parsePublicKey(pkcs1Public));
  t.true(unsealSecrets(sealedForPkcs1, gatewayPrivate).equals(secretsJson));
  t.true(unsealSecrets(sealSecrets(secretsJson, gatewayPublic), parsePrivateKey(pkcs1Private)).equals(secretsJson));
  t.is(publicKeyId(parsePrivateKey(pkcs1Private)), publicKeyId(gatewayPublic));
});

test('another gateway\'s private key cannot open the secrets', (t) => {
  const sealed = sealSecrets(secretsJson, gatewayPublic);
  t.throws(() => unsealSecrets(sealed, parsePrivateKey(other.privatePem)), { instanceOf: SecretsError, message: /sealed for key/ });
});

test('a public key cannot unseal, and non-RSA keys are refused', (t) => {
  const sealed = sealSecrets(secretsJson, gatewayPublic);
  t.throws(() => unsealSecrets(sealed, gatewayPublic), { instanceOf: SecretsError, message: /private key/ });
  const ed = createPrivateKey('-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBi7kZ1xMmjhJmWdUDPAsr+Cq7oc+FNZLzvc63xRN5Ol\n-----END PRIVATE KEY-----\n');
  t.throws(() => sealSecrets(secretsJson, createPublicKey(ed)), { instanceOf: SecretsError, message: /RSA/ });
});

const tampers: [string, (doc: SealedSecrets) => void, RegExp][] = [
  ['the ciphertext', (d) => { d.ciphertext = flipBit(d.ciphertext, 3); }, /altered/],
  ['the tag', (d) => { d.tag = flipBit(d.tag, 15); }, /altered/],
  ['the iv', (d) => { d.iv = flipBit(d.iv); }, /altered/],
  ['the wrapped key', (d) => { d.wrapped_key = flipBit(d.wrapped_key, 100); }, /wrapped key/],
  ['the key id', (d) => { d.key_id = d.key_id.replace(/^./, (c) => (c === '0' ? '1' : '0')); }, /sealed for key/],
  ['a truncated ciphertext', (d) => { d.ciphertext = Buffer.from(d.ciphertext, 'base64').subarray(1).toString('base64'); }, /altered/],
  ['a non-canonical base64 text', (d) => { d.tag = d.tag.replace(/=+$/, ''); }, /not valid base64/],
  ['a short tag', (d) => { d.tag = Buffer.from(d.tag, 'base64').subarray(0, 8).toString('base64'); }, /wrong length/],
  ['the version', (d) => { (d as { version: number }).version = 2; }, /version 2/],
  ['the cipher name', (d) => { (d as { cipher: string }).cipher = 'AES-128-CBC'; }, /expected/],
];
for (const [what, change, message] of tampers) {
  test(`tampering with ${what} is refused with a SecretsError`, (t) => {
    const tampered = edit(sealSecrets(secretsJson, gatewayPublic), change);
    t.throws(() => unsealSecrets(tampered, gatewayPrivate), { instanceOf: SecretsError, message });
  });
}

test('a document that is not sealed secrets is refused', (t) => {
  for (const bad of ['', 'not json', '[]', '{"format":"other"}', '{"AWS_KEY":"plaintext secrets.json"}']) {
    t.throws(() => unsealSecrets(Buffer.from(bad), gatewayPrivate), { instanceOf: SecretsError });
  }
});

test('a sealed document re-serialized with other whitespace still opens', (t) => {
  const sealed = sealSecrets(secretsJson, gatewayPublic);
  const compact = Buffer.from(JSON.stringify(JSON.parse(sealed.toString())));
  t.true(unsealSecrets(compact, gatewayPrivate).equals(secretsJson));
});
