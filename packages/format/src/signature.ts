import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { SignatureError } from './errors.js';

/**
 * Ed25519 keys. A key id is the first 16 hex digits of the SHA-256 of the
 * raw 32-byte public key: short enough to read, long enough not to collide
 * among a publisher's keys. Trust is decided on the full key, never the id.
 */
export const ED25519_PUBLIC_KEY_LENGTH = 32;
export const ED25519_SIGNATURE_LENGTH = 64;

export function keyIdOf(rawPublicKey: Uint8Array): string {
  return createHash('sha256').update(rawPublicKey).digest('hex').slice(0, 16);
}

export interface KeyPairPem {
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
  readonly keyId: string;
}

export function generateSigningKey(): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(rawPublicKey(publicKey)),
  };
}

export function rawPublicKey(key: KeyObject): Uint8Array {
  if (key.asymmetricKeyType !== 'ed25519') throw new SignatureError('not an Ed25519 key');
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new SignatureError('Ed25519 key has no public part');
  return Buffer.from(jwk.x, 'base64url');
}

export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== ED25519_PUBLIC_KEY_LENGTH) throw new SignatureError('an Ed25519 public key is 32 bytes');
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') },
    format: 'jwk',
  });
}

/** Reads a PEM private key (PKCS#8). */
export function parsePrivateKey(pem: string | Uint8Array): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(typeof pem === 'string' ? pem : Buffer.from(pem));
  } catch {
    throw new SignatureError('not a PEM private key');
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new SignatureError(`key is ${key.asymmetricKeyType}, expected ed25519`);
  return key;
}

/**
 * Reads a public key: PEM (SPKI), or the bare base64 of the 32 raw bytes as
 * printed by `thfc-pack inspect`, so a key can be passed on a command line.
 */
export function parsePublicKey(text: string | Uint8Array): Uint8Array {
  const s = (typeof text === 'string' ? text : Buffer.from(text).toString('utf8')).trim();
  if (/^[A-Za-z0-9+/]{43}=$/.test(s)) return Buffer.from(s, 'base64');
  let key: KeyObject;
  try {
    key = createPublicKey(s);
  } catch {
    throw new SignatureError('not an Ed25519 public key (expected PEM or 44 base64 characters)');
  }
  return rawPublicKey(key);
}

export function signBytes(message: Uint8Array, privateKey: KeyObject): Uint8Array {
  return sign(null, message, privateKey);
}

export function verifyBytes(message: Uint8Array, signature: Uint8Array, rawPub: Uint8Array): boolean {
  try {
    return verify(null, message, publicKeyFromRaw(rawPub), signature);
  } catch {
    return false;
  }
}
