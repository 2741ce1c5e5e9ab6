import type { KeyObject } from 'node:crypto';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, keyIdOf, signBytes, verifyBytes } from './signature.js';

/**
 * The inline signature line shared by every signed thfc file (index v1, boot
 * profile v1): `sig ed25519 <key-id> <public key, base64> <signature, base64>`,
 * signing every byte of the file before the line. Appending a line changes no
 * earlier byte, so several keys can sign (rotation) and a file and its
 * signatures change atomically.
 */
export interface InlineSignature {
  readonly algorithm: 'ed25519';
  readonly keyId: string;
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
  /** The signature covers bytes [0, signedLength) of the file. */
  readonly signedLength: number;
  readonly line: number;
}

const B64_PUB = /^[A-Za-z0-9+/]{43}=$/;
const B64_SIG = /^[A-Za-z0-9+/]{86}==$/;

/** Parses one signature line; `fail(reason, field)` must throw. */
export function parseSignatureLine(
  text: string,
  signedLength: number,
  line: number,
  fail: (reason: string, field: string) => never,
): InlineSignature {
  const parts = text.split(' ');
  if (parts[0] !== 'sig') fail('only signature lines may follow the end line', 'sig');
  if (parts.length !== 5) fail('expected "sig ed25519 <key-id> <public-key> <signature>"', 'sig');
  const [, alg, keyId, pub, sig] = parts as [string, string, string, string, string];
  if (alg !== 'ed25519') fail(`unknown signature algorithm "${alg.slice(0, 20)}"`, 'algorithm');
  if (!B64_PUB.test(pub)) fail('public key must be 44 base64 characters', 'public-key');
  if (!B64_SIG.test(sig)) fail('signature must be 88 base64 characters', 'signature');
  const publicKey = Buffer.from(pub, 'base64');
  const signature = Buffer.from(sig, 'base64');
  if (publicKey.length !== ED25519_PUBLIC_KEY_LENGTH || signature.length !== ED25519_SIGNATURE_LENGTH) {
    fail('bad key or signature length', 'signature');
  }
  if (keyId !== keyIdOf(publicKey)) fail(`key id ${keyId.slice(0, 20)} does not match the public key`, 'key-id');
  return { algorithm: 'ed25519', keyId, publicKey, signature, signedLength, line };
}

/** Appends a signature line covering every byte of `bytes`. */
export function appendSignature(bytes: Uint8Array, privateKey: KeyObject, rawPublicKey: Uint8Array): Uint8Array {
  const sig = signBytes(bytes, privateKey);
  const line = `sig ed25519 ${keyIdOf(rawPublicKey)} ${Buffer.from(rawPublicKey).toString('base64')} ${Buffer.from(sig).toString('base64')}\n`;
  return Buffer.concat([bytes, Buffer.from(line)]);
}

/** Checks each signature against the bytes it covers. Says nothing about trust. */
export function verifyInlineSignatures(
  bytes: Uint8Array,
  signatures: readonly InlineSignature[],
): { keyId: string; publicKey: Uint8Array; valid: boolean }[] {
  return signatures.map((s) => ({
    keyId: s.keyId,
    publicKey: s.publicKey,
    valid: verifyBytes(bytes.subarray(0, s.signedLength), s.signature, s.publicKey),
  }));
}
