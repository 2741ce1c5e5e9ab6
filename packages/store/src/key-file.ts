import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fsError, keyIdOf, parsePrivateKey, parsePublicKey, rawPublicKey, SignatureError } from '@thfc/format';

export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
  readonly keyId: string;
}

export async function readKeyFile(path: string): Promise<SigningKey> {
  let pem: Buffer;
  try {
    pem = await readFile(path);
  } catch (e) {
    throw fsError(e, `key ${path}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = parsePrivateKey(pem);
  } catch (e) {
    throw new SignatureError(`${path}: ${(e as Error).message} (make one with: thfc-pack keygen ${path})`);
  }
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

/** Reads a public key file (PEM or bare base64), or takes the argument itself as base64. */
export async function readPublicKey(pathOrBase64: string): Promise<Uint8Array> {
  if (/^[A-Za-z0-9+/]{43}=$/.test(pathOrBase64)) return parsePublicKey(pathOrBase64);
  let text: Buffer;
  try {
    text = await readFile(pathOrBase64);
  } catch (e) {
    throw fsError(e, `public key ${pathOrBase64}`);
  }
  try {
    return parsePublicKey(text);
  } catch (e) {
    throw new SignatureError(`${pathOrBase64}: ${(e as Error).message}`);
  }
}
