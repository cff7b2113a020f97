// proto/ checked against an independent implementation written from WIRE.md alone
// (test/support/hand-protobuf.ts), in both directions: what we encode and sign, the hand code
// must reproduce byte for byte and accept; what the hand code signs, we must verify and decode.
import test, { type ExecutionContext } from 'ava';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  ChunkType, ManifestCodec, MessageError, ReplyCodec, RequestCodec, RequestType, SignatureField, SignedBlockHeaderCodec,
  type Manifest, type ManifestBlock, type Reply, type Request, type SignedBlockHeader,
} from '../proto/messages.js';
import { parsePrivateKey, parsePublicKey, signMessage, unsignedBytes, verifyRawMessage } from '../proto/signature.js';
import {
  handEncode, handPssSign, handPssVerify, handSignMessage, lengthDelimitedField, ManifestSpec, readTopLevelFields, ReplySpec,
  RequestSpec, SignedBlockHeaderSpec, stringField, withDuplicatedField, withoutField, type MessageSpec,
} from './support/hand-protobuf.js';

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);

// 2048 bits keeps the suite quick; the scheme does not depend on the size (the original used 4096).
const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

const blocks: ManifestBlock[] = [
  {
    block_id: 0n, block_version: -1n, hash: sha256('block 0'), owner_id: U64_MAX, caps: 3, chunk_type: ChunkType.BLOCK,
    offset: 0n, size: 4096n, logical_offset: 0n, logical_len: 4096n,
  },
  {
    block_id: (1n << 53n) + 1n, block_version: I64_MIN, hash: sha256('block 2^53+1'), chunk_type: ChunkType.BLOCK,
    offset: 4096n, size: 100n, logical_offset: (1n << 63n) + 4096n, logical_len: 100n,
  },
];

const request: Request = {
  volume_version: 3n,
  cert_version: 7n,
  request_type: RequestType.PUTCHUNKS,
  volume_id: 1n,
  coordinator_id: (1n << 63n) + 11n,
  file_id: 0xfedcba9876543210n, // above 2^63
  file_version: -42n,
  fs_path: '/dir/file with spaces.txt',
  blocks,
  new_manifest_mtime_sec: -5n,
  new_manifest_mtime_nsec: 999_999_999,
  user_id: 0n, // a required zero must still be written
  src_gateway_id: 99n,
  signature: '',
  message_nonce: U64_MAX - 1n, // above 2^63
  new_mode: 0o644,
  xattr_flags: -2, // negative int32: a 10-byte varint
  gateway_cert_version: 12n,
};

const reply: Reply = {
  volume_version: 3n,
  cert_version: 7n,
  message_nonce: U64_MAX - 1n,
  error_code: -2,
  user_id: 0n,
  gateway_id: (1n << 63n) + 1n,
  gateway_type: 2n,
  signature: '',
  xattr_names: ['user.a', 'user.é'],
  xattr_value: 'value',
};

const manifest: Manifest = {
  volume_id: 1n,
  coordinator_id: 0xffffffff00000001n,
  owner_id: 5n,
  file_id: 0xfedcba9876543210n,
  file_version: -42n,
  mtime_sec: -1n,
  mtime_nsec: 5,
  size: (1n << 53n) + 3n,
  blocks: [blocks[0]!, { block_id: 1n, block_version: (1n << 62n) + 7n }], // the second unhashed, as an AG sends it
  signature: '',
};

const header: SignedBlockHeader = {
  volume_id: 1n,
  file_id: 0xfedcba9876543210n,
  file_version: -42n,
  block_id: U64_MAX,
  block_version: I64_MIN,
  block_hash: sha256('block bytes'),
  gateway_id: 77n,
  signature: '',
};

interface Codec<T> {
  encode(message: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

interface Case<T extends { signature: string }> {
  name: string;
  spec: MessageSpec;
  codec: Codec<T>;
  signatureField: number;
  message: T;
}

const cases = [
  { name: 'Request', spec: RequestSpec, codec: RequestCodec, signatureField: SignatureField.Request, message: request } satisfies Case<Request>,
  { name: 'Reply', spec: ReplySpec, codec: ReplyCodec, signatureField: SignatureField.Reply, message: reply } satisfies Case<Reply>,
  { name: 'Manifest', spec: ManifestSpec, codec: ManifestCodec, signatureField: SignatureField.Manifest, message: manifest } satisfies Case<Manifest>,
  {
    name: 'SignedBlockHeader', spec: SignedBlockHeaderSpec, codec: SignedBlockHeaderCodec,
    signatureField: SignatureField.SignedBlockHeader, message: header,
  } satisfies Case<SignedBlockHeader>,
] as const;

/** Decoded bytes fields may be Buffer or Uint8Array; compare contents only. */
function normalizeBytes(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (Array.isArray(value)) return value.map(normalizeBytes);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalizeBytes(v)]));
  }
  return value;
}

function sameBytes(t: ExecutionContext, actual: Uint8Array, expected: Uint8Array, what: string): void {
  t.is(Buffer.from(actual).toString('hex'), Buffer.from(expected).toString('hex'), what);
}

// ---- independent encoder -> ours ----

test('a Request signed by an independent encoder verifies and decodes to the same 64-bit values', (t) => {
  const hand = handSignMessage(RequestSpec, request, keys.privateKey);
  t.true(verifyRawMessage(hand.signed, SignatureField.Request, keys.publicKey));
  const decoded = RequestCodec.decode(hand.signed);
  t.deepEqual(normalizeBytes(decoded), normalizeBytes({ ...request, signature: hand.signature }));
  t.is(decoded.file_id, 0xfedcba9876543210n);
  t.is(decoded.message_nonce, U64_MAX - 1n);
  t.is(decoded.file_version, -42n);
  t.is(decoded.blocks?.[1]?.block_version, I64_MIN);
  t.is(decoded.blocks?.[1]?.block_id, (1n << 53n) + 1n);
});

for (const c of cases) {
  test(`a ${c.name} signed by the independent encoder verifies through verifyRawMessage and decodes exactly`, (t) => {
    const hand = handSignMessage(c.spec, c.message, keys.privateKey);
    t.true(verifyRawMessage(hand.signed, c.signatureField, keys.publicKey));
    t.false(verifyRawMessage(hand.signed, c.signatureField, otherKeys.publicKey), 'another key must not verify');
    const decoded = (c.codec as Codec<typeof c.message>).decode(hand.signed);
    t.deepEqual(normalizeBytes(decoded), normalizeBytes({ ...c.message, signature: hand.signature }));
  });

  // ---- ours -> independent encoder ----

  test(`a ${c.name} signed by signMessage is byte-identical to the independent encoding and its signature verifies by hand`, (t) => {
    const codec = c.codec as Codec<typeof c.message>;
    const ours = signMessage(c.message, codec.encode, keys.privateKey);
    const signature = stringField(ours.bytes, c.signatureField);
    t.is(signature, ours.message.signature);
    t.regex(signature, /^[A-Za-z0-9+/]+={0,2}$/, 'standard base64 without newlines');
    t.is(Buffer.from(signature, 'base64').toString('base64'), signature, 'padded, canonical base64');
    sameBytes(t, codec.encode({ ...c.message, signature: '' }), handEncode(c.spec, { ...c.message, signature: '' }), 'unsigned form');
    sameBytes(t, ours.bytes, handEncode(c.spec, { ...c.message, signature }), 'signed form');
    t.true(handPssVerify(handEncode(c.spec, { ...c.message, signature: '' }), signature, keys.publicKey));
  });

  test(`a ${c.name} missing any required field does not decode`, (t) => {
    const { signed } = handSignMessage(c.spec, c.message, keys.privateKey);
    for (const field of c.spec.fields.filter((f) => f.required)) {
      t.throws(() => c.codec.decode(withoutField(signed, field.number)), { instanceOf: MessageError }, field.name);
    }
  });

  test(`a ${c.name} missing a required field is refused by the encoder`, (t) => {
    const codec = c.codec as Codec<typeof c.message>;
    for (const field of c.spec.fields.filter((f) => f.required)) {
      const incomplete = { ...c.message, [field.name]: undefined } as typeof c.message;
      t.throws(() => codec.encode(incomplete), { instanceOf: MessageError }, field.name);
    }
  });
}

test('int64 negatives are 10-byte two\'s complement varints, not zig-zag', (t) => {
  // Checked on our own encoding: Request.file_version = -42 and xattr_flags = -2.
  const bytes = RequestCodec.encode(request);
  const fileVersion = readTopLevelFields(bytes).find((f) => f.number === 7)!;
  t.is(fileVersion.value, BigInt.asUintN(64, -42n));
  t.is(fileVersion.end - fileVersion.start, 1 + 10);
  const flags = readTopLevelFields(bytes).find((f) => f.number === 26)!;
  t.is(flags.value, BigInt.asUintN(64, -2n), 'negative int32 is sign-extended to 64 bits');
});

test('our fields come out in field-number order with required zeros present', (t) => {
  const numbers = readTopLevelFields(RequestCodec.encode(request)).map((f) => f.number);
  t.deepEqual(numbers, [1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 12, 13, 14, 15, 16, 17, 19, 26, 27]);
});

// ---- tampering and malformed signatures ----

test('tampering with any byte of a signed Request makes verification fail', (t) => {
  const { signed } = handSignMessage(RequestSpec, request, keys.privateKey);
  let accepted = 0;
  for (let i = 0; i < signed.length; i++) {
    for (const flip of [0x01, 0x80]) {
      const tampered = Buffer.from(signed);
      tampered[i]! ^= flip;
      if (verifyRawMessage(tampered, SignatureField.Request, keys.publicKey)) {
        accepted++;
        t.log(`byte ${i} ^ 0x${flip.toString(16)} still verifies`);
      }
    }
  }
  t.is(accepted, 0);
});

test('a signature made with another salt length or MGF1 hash is refused', (t) => {
  for (const pss of [{ saltLength: 20, mgf1Hash: 'sha256' }, { saltLength: 32, mgf1Hash: 'sha1' }] as const) {
    const { signed, unsigned, signature } = handSignMessage(RequestSpec, request, keys.privateKey, { pss });
    t.true(handPssVerify(unsigned, signature, keys.publicKey, pss), 'the hand verifier accepts its own variant');
    t.false(verifyRawMessage(signed, SignatureField.Request, keys.publicKey), `${pss.saltLength}/${pss.mgf1Hash}`);
  }
});

test('a missing signature field leaves no signed bytes to check', (t) => {
  for (const c of cases) {
    const { signed } = handSignMessage(c.spec, c.message, keys.privateKey);
    t.is(unsignedBytes(withoutField(signed, c.signatureField), c.signatureField), null, c.name);
    t.false(verifyRawMessage(withoutField(signed, c.signatureField), c.signatureField, keys.publicKey), c.name);
  }
});

test('a duplicated signature field leaves no signed bytes to check', (t) => {
  for (const c of cases) {
    const { signed } = handSignMessage(c.spec, c.message, keys.privateKey);
    t.is(unsignedBytes(withDuplicatedField(signed, c.signatureField), c.signatureField), null, c.name);
    t.false(verifyRawMessage(withDuplicatedField(signed, c.signatureField), c.signatureField, keys.publicKey), c.name);
  }
});

test('unsignedBytes gives back exactly the bytes that were signed', (t) => {
  for (const c of cases) {
    const hand = handSignMessage(c.spec, c.message, keys.privateKey);
    const split = unsignedBytes(hand.signed, c.signatureField);
    t.not(split, null, c.name);
    sameBytes(t, split!.bytes, hand.unsigned, c.name);
    t.is(split!.signature, hand.signature, c.name);
  }
});

test('an empty signature never verifies', (t) => {
  const unsigned = handEncode(RequestSpec, { ...request, signature: '' });
  t.false(verifyRawMessage(unsigned, SignatureField.Request, keys.publicKey));
});

test('a Reply carrying an unknown field 11 signed by hand still verifies through the raw splice', (t) => {
  const field11 = lengthDelimitedField(11, Uint8Array.from([0x08, 0x2a, 0x12, 0x03, 0x61, 0x62, 0x63]));
  const hand = handSignMessage(ReplySpec, reply, keys.privateKey, { extra: field11 });
  t.true(verifyRawMessage(hand.signed, SignatureField.Reply, keys.publicKey));
  const decoded = ReplyCodec.decode(hand.signed);
  t.is(decoded.message_nonce, reply.message_nonce);
  // Why verification splices raw bytes: re-encoding the decoded Reply loses field 11.
  const reencoded = ReplyCodec.encode({ ...decoded, signature: '' });
  t.false(handPssVerify(reencoded, hand.signature, keys.publicKey));
});

test('a sender\'s field order is kept when verifying (the signed bytes are the received bytes)', (t) => {
  // message_nonce (17) moved before volume_version (1): legal protobuf, and a re-encoding verifier would fail.
  const reordered = (signature: string): Buffer => {
    const bytes = handEncode(RequestSpec, { ...request, signature });
    const fields = readTopLevelFields(bytes);
    const first = fields.filter((f) => f.number === 17);
    const rest = fields.filter((f) => f.number !== 17);
    return Buffer.concat([...first, ...rest].map((f) => bytes.subarray(f.start, f.end)));
  };
  const unsigned = reordered('');
  t.not(unsigned.toString('hex'), Buffer.from(RequestCodec.encode({ ...request, signature: '' })).toString('hex'));
  const signature = handPssSign(unsigned, keys.privateKey);
  t.true(verifyRawMessage(reordered(signature), SignatureField.Request, keys.publicKey));
});

// ---- keys ----

test('private keys in PKCS#1 and PKCS#8 PEM both sign what the hand verifier accepts', (t) => {
  const pkcs1 = keys.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const pkcs8 = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  t.true(pkcs1.startsWith('-----BEGIN RSA PRIVATE KEY-----'));
  t.true(pkcs8.startsWith('-----BEGIN PRIVATE KEY-----'));
  for (const pem of [pkcs1, pkcs8, Buffer.from(pkcs1)]) {
    const ours = signMessage(request, RequestCodec.encode, parsePrivateKey(pem));
    t.true(handPssVerify(RequestCodec.encode({ ...request, signature: '' }), ours.message.signature, keys.publicKey));
  }
});

test('public keys in SPKI and PKCS#1 PEM both verify a hand signature', (t) => {
  const spki = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const pkcs1 = keys.publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  t.true(spki.startsWith('-----BEGIN PUBLIC KEY-----'));
  t.true(pkcs1.startsWith('-----BEGIN RSA PUBLIC KEY-----'));
  const { signed } = handSignMessage(RequestSpec, request, keys.privateKey);
  for (const pem of [spki, pkcs1]) t.true(verifyRawMessage(signed, SignatureField.Request, parsePublicKey(pem)));
  // A private key PEM yields its public half.
  const privatePem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  t.true(verifyRawMessage(signed, SignatureField.Request, parsePublicKey(privatePem)));
});

test('the hand PSS code and Node agree on what a key is (sanity of the independent side)', (t) => {
  const pem = keys.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const priv: KeyObject = createPrivateKey(pem);
  const pub: KeyObject = createPublicKey(priv);
  const signature = handPssSign(Buffer.from('hello'), priv);
  t.true(handPssVerify(Buffer.from('hello'), signature, pub));
  t.false(handPssVerify(Buffer.from('hellO'), signature, pub));
  t.false(handPssVerify(Buffer.from('hello'), signature, otherKeys.publicKey));
});

// ---- malformed input ----

test('garbage bytes do not decode', (t) => {
  const garbage = [
    Uint8Array.from([0xff, 0xff, 0xff, 0xff]),
    Uint8Array.from([0x0f]), // wire type 7
    Uint8Array.from([0x42, 0x10, 0x61]), // length 16, 1 byte present
    Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // 11-byte varint
    Buffer.from('GET /DATA/1/x.A.1/0.0 HTTP/1.1\r\n'),
    new Uint8Array(),
  ];
  for (const c of cases) {
    for (const bytes of garbage) {
      t.throws(() => c.codec.decode(bytes), { instanceOf: MessageError }, `${c.name} ${Buffer.from(bytes).toString('hex')}`);
    }
    const { signed } = handSignMessage(c.spec, c.message, keys.privateKey);
    const sig = readTopLevelFields(signed).find((f) => f.number === c.signatureField)!;
    for (const cut of [signed.length - 1, Math.floor((sig.start + sig.end) / 2)]) {
      t.throws(() => c.codec.decode(signed.subarray(0, cut)), { instanceOf: MessageError }, `${c.name} truncated to ${cut}`);
    }
  }
});

test('a Manifest whose block lacks its required block_version does not decode', (t) => {
  const withoutVersion = handEncode({ name: 'LooseBlock', fields: [{ name: 'block_id', number: 1, type: 'uint64' }] }, { block_id: 1n });
  const spec: MessageSpec = {
    ...ManifestSpec,
    fields: ManifestSpec.fields.map((f) => (f.number === 9 ? { ...f, type: 'bytes' } : f)),
  };
  const bytes = handEncode(spec, { ...manifest, blocks: [withoutVersion], signature: 'x' });
  t.throws(() => ManifestCodec.decode(bytes), { instanceOf: MessageError });
});

// ---- signatures and 64-bit values must be exact ----

test('a signature in non-canonical base64 (different unused bits) is refused', (t) => {
  // 2048-bit signature = 256 bytes = 85 groups + 1 byte: "XY==", where Y carries 2 data bits and
  // 4 unused bits. Changing only unused bits yields different message bytes that still verify.
  const { signed, signature } = handSignMessage(RequestSpec, request, keys.privateKey);
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const last = signature.length - 3;
  const sixBits = B64.indexOf(signature[last]!);
  const altered = signature.slice(0, last) + B64[sixBits ^ 0b0001] + signature.slice(last + 1);
  t.not(altered, signature);
  t.deepEqual(Buffer.from(altered, 'base64'), Buffer.from(signature, 'base64'));
  const tampered = handEncode(RequestSpec, { ...request, signature: altered });
  t.not(Buffer.from(tampered).toString('hex'), Buffer.from(signed).toString('hex'));
  t.false(verifyRawMessage(tampered, SignatureField.Request, keys.publicKey));
});

test('an unpadded signature is refused (WIRE.md: standard base64, padded)', (t) => {
  const { signature } = handSignMessage(RequestSpec, request, keys.privateKey);
  t.true(signature.endsWith('='));
  const unpadded = handEncode(RequestSpec, { ...request, signature: signature.replace(/=+$/, '') });
  t.false(verifyRawMessage(unpadded, SignatureField.Request, keys.publicKey));
});

test('encoding a 64-bit field outside its type\'s range is refused', (t) => {
  // Long.fromBigInt keeps only the low 64 bits: 2^64 encodes as 0, -1 as 2^64-1, both signed silently.
  t.throws(() => RequestCodec.encode({ ...request, file_id: 1n << 64n }), { instanceOf: MessageError });
  t.throws(() => RequestCodec.encode({ ...request, message_nonce: -1n }), { instanceOf: MessageError });
  t.throws(() => RequestCodec.encode({ ...request, file_version: 1n << 63n }), { instanceOf: MessageError });
});
