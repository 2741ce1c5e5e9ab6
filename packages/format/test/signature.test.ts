import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SignatureError } from '../src/errors.js';
import {
  ED25519_PUBLIC_KEY_LENGTH,
  ED25519_SIGNATURE_LENGTH,
  generateSigningKey,
  keyIdOf,
  parsePrivateKey,
  parsePublicKey,
  publicKeyFromRaw,
  rawPublicKey,
  signBytes,
  verifyBytes,
} from '../src/signature.js';

const message = new TextEncoder().encode('thfc-index 1\n');

describe('generateSigningKey', () => {
  it('returns PKCS#8 and SPKI PEM and the key id of the public key', () => {
    const k = generateSigningKey();
    expect(k.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n$/);
    expect(k.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
    const raw = parsePublicKey(k.publicKeyPem);
    expect(raw).toHaveLength(ED25519_PUBLIC_KEY_LENGTH);
    expect(k.keyId).toBe(keyIdOf(raw));
    expect(k.keyId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('makes a different key each time', () => {
    expect(generateSigningKey().keyId).not.toBe(generateSigningKey().keyId);
  });
});

describe('keyIdOf', () => {
  it('is the first 16 hex digits of SHA-256 of the raw public key', () => {
    const raw = new Uint8Array(32).fill(1);
    expect(keyIdOf(raw)).toBe(createHash('sha256').update(raw).digest('hex').slice(0, 16));
    expect(keyIdOf(new Uint8Array(32))).toBe('66687aadf862bd77');
  });
});

describe('key parsing', () => {
  const k = generateSigningKey();
  const raw = parsePublicKey(k.publicKeyPem);

  it('reads a public key as PEM or as 44 base64 characters, with surrounding whitespace', () => {
    const b64 = Buffer.from(raw).toString('base64');
    expect(b64).toHaveLength(44);
    expect(Buffer.from(parsePublicKey(b64)).equals(Buffer.from(raw))).toBe(true);
    expect(Buffer.from(parsePublicKey(` ${b64}\n`)).equals(Buffer.from(raw))).toBe(true);
    expect(Buffer.from(parsePublicKey(Buffer.from(k.publicKeyPem))).equals(Buffer.from(raw))).toBe(true);
  });

  it('rejects garbage and non-Ed25519 public keys with SignatureError', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' });
    for (const bad of ['', 'hello', Buffer.from(raw).toString('base64').slice(1), String(rsa)]) {
      expect(() => parsePublicKey(bad), bad.slice(0, 30)).toThrow(SignatureError);
    }
  });

  it('reads a PKCS#8 private key that signs for its public key', () => {
    const priv = parsePrivateKey(k.privateKeyPem);
    expect(priv.type).toBe('private');
    expect(Buffer.from(rawPublicKey(priv)).equals(Buffer.from(raw))).toBe(true);
    expect(parsePrivateKey(Buffer.from(k.privateKeyPem)).type).toBe('private');
  });

  it('rejects garbage, public keys and non-Ed25519 private keys', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    expect(() => parsePrivateKey('nope')).toThrow(SignatureError);
    expect(() => parsePrivateKey(k.publicKeyPem)).toThrow(SignatureError);
    expect(() => parsePrivateKey(String(ec))).toThrow(/key is ec, expected ed25519/);
  });

  it('converts between raw bytes and key objects', () => {
    const pub = publicKeyFromRaw(raw);
    expect(pub.asymmetricKeyType).toBe('ed25519');
    expect(Buffer.from(rawPublicKey(pub)).equals(Buffer.from(raw))).toBe(true);
    expect(() => publicKeyFromRaw(raw.subarray(1))).toThrow(SignatureError);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    expect(() => rawPublicKey(rsa)).toThrow(/not an Ed25519 key/);
  });
});

describe('signBytes / verifyBytes', () => {
  const k = generateSigningKey();
  const priv = parsePrivateKey(k.privateKeyPem);
  const raw = parsePublicKey(k.publicKeyPem);

  it('verifies its own signature, deterministically (Ed25519)', () => {
    const sig = signBytes(message, priv);
    expect(sig).toHaveLength(ED25519_SIGNATURE_LENGTH);
    expect(Buffer.from(signBytes(message, priv)).equals(Buffer.from(sig))).toBe(true);
    expect(verifyBytes(message, sig, raw)).toBe(true);
  });

  it('fails for another message, another key, a flipped bit, or malformed inputs, without throwing', () => {
    const sig = signBytes(message, priv);
    const other = parsePublicKey(generateSigningKey().publicKeyPem);
    const flipped = Buffer.from(sig);
    flipped[10] = (flipped[10] as number) ^ 1;
    expect(verifyBytes(new TextEncoder().encode('thfc-index 2\n'), sig, raw)).toBe(false);
    expect(verifyBytes(message, sig, other)).toBe(false);
    expect(verifyBytes(message, flipped, raw)).toBe(false);
    expect(verifyBytes(message, sig.subarray(1), raw)).toBe(false);
    expect(verifyBytes(message, sig, raw.subarray(1))).toBe(false);
  });
});
