import { readFile, stat } from 'node:fs/promises';
import {
  grantKey,
  type KeyGrant,
  keyIdOf,
  mergeTrustStores,
  parseExpiry,
  parsePublicKey,
  revokeKey,
  revokes,
  SignatureError,
  type TrustStoreFile,
} from '@thfc/format';
import { readKeyFile, readTrustStoreFiles, readTrustStoreForEdit, writeTrustStoreFile } from '@thfc/store';
import { fsError, UsageError } from './errors.js';
import { runKeygen } from './keygen.js';
import { runSign, type SignResult } from './sign.js';

/**
 * `thfc-pack key list|add|revoke|rotate`: the publisher's side of trust.
 * A publisher keeps private keys (`thfc-pack keygen`) and one trust-store
 * file that clients install (docs/TRUST.md); these commands edit that file
 * and re-sign indexes so clients never see a gap:
 *
 *   list    what a store (file or directory) grants, and each key's state now;
 *   add     grant a key, with expiry, scope and label (re-adding updates them);
 *   revoke  drop a key's grants and add a `revoke` line;
 *   rotate  make (or take) a new key, sign every given index with the old and
 *           the new key, grant the new key (with the old key's scope unless
 *           told otherwise) and, with --retire-old, set the old key's expiry.
 */

/** A key named on the command line: a key id, a base64 public key, or a public or private key file. */
export async function resolveKeyArgument(arg: string): Promise<{ keyId: string; publicKey?: Uint8Array }> {
  if (/^[0-9a-f]{16}$/.test(arg)) return { keyId: arg };
  if (/^[A-Za-z0-9+/]{43}=$/.test(arg)) {
    const publicKey = parsePublicKey(arg);
    return { keyId: keyIdOf(publicKey), publicKey };
  }
  let text: string;
  try {
    text = await readFile(arg, 'utf8');
  } catch (e) {
    throw fsError(e, `key ${arg}`);
  }
  if (text.includes('PRIVATE KEY')) {
    const k = await readKeyFile(arg);
    return { keyId: k.keyId, publicKey: k.publicKey };
  }
  try {
    const publicKey = parsePublicKey(text);
    return { keyId: keyIdOf(publicKey), publicKey };
  } catch (e) {
    throw new SignatureError(`${arg}: ${(e as Error).message}`);
  }
}

export interface KeyListOptions {
  /** Trust-store files or directories. */
  readonly paths: readonly string[];
  readonly now?: Date | undefined;
}

export interface KeyListEntry {
  readonly keyId: string;
  readonly publicKey: string;
  /** At `now`: revoked beats expired beats trusted. */
  readonly state: 'trusted' | 'expired' | 'revoked';
  readonly expires: string | null;
  readonly scope: readonly string[] | null;
  readonly label: string | null;
  readonly source: string;
}

export interface KeyListReport {
  readonly keys: KeyListEntry[];
  readonly revocations: { keyId: string; publicKey: string | null; source: string }[];
}

export async function runKeyList(options: KeyListOptions): Promise<KeyListReport> {
  if (options.paths.length === 0) throw new UsageError('name a trust-store file or directory');
  const files: TrustStoreFile[] = [];
  for (const p of options.paths) files.push(...(await readTrustStoreFiles(p)));
  const store = mergeTrustStores(files);
  const now = (options.now ?? new Date()).getTime();
  return {
    keys: store.grants.map((g: KeyGrant) => ({
      keyId: g.keyId,
      publicKey: b64(g.publicKey),
      state: store.revocations.some((r) => revokes(r, g.publicKey))
        ? 'revoked'
        : g.expires !== undefined && now >= Date.parse(g.expires)
          ? 'expired'
          : 'trusted',
      expires: g.expires ?? null,
      scope: g.scope ?? null,
      label: g.label ?? null,
      source: g.source,
    })),
    revocations: store.revocations.map((r) => ({
      keyId: r.keyId,
      publicKey: r.publicKey ? b64(r.publicKey) : null,
      source: r.source,
    })),
  };
}

export interface KeyGrantOptions {
  readonly expires?: string | undefined;
  /** Image-name globs, e.g. `debian-*`. */
  readonly scope?: readonly string[] | undefined;
  readonly label?: string | undefined;
}

export interface KeyAddOptions extends KeyGrantOptions {
  /** The trust-store file to edit (created if missing). */
  readonly trustStore: string;
  readonly key: string;
}

export async function runKeyAdd(options: KeyAddOptions): Promise<{ trustStore: string; keyId: string }> {
  const key = await resolveKeyArgument(options.key);
  if (!key.publicKey) throw new UsageError(`add needs the public key, not only its id ${key.keyId}`);
  const file = await readTrustStoreForEdit(options.trustStore);
  await writeTrustStoreFile(grantKey(file, key.publicKey, grantOptions(options)));
  return { trustStore: options.trustStore, keyId: key.keyId };
}

export interface KeyRevokeOptions {
  readonly trustStore: string;
  /** Key id, base64 public key, or a key file. */
  readonly key: string;
}

export async function runKeyRevoke(
  options: KeyRevokeOptions,
): Promise<{ trustStore: string; keyId: string; removedGrants: number; added: boolean }> {
  const key = await resolveKeyArgument(options.key);
  const file = await readTrustStoreForEdit(options.trustStore);
  const edited = revokeKey(file, key.publicKey ?? key.keyId);
  const count = (f: TrustStoreFile, kind: 'key' | 'revoke') => f.lines.filter((l) => l.kind === kind).length;
  await writeTrustStoreFile(edited);
  return {
    trustStore: options.trustStore,
    keyId: key.keyId,
    removedGrants: count(file, 'key') - count(edited, 'key'),
    added: count(edited, 'revoke') > count(file, 'revoke'),
  };
}

export interface KeyRotateOptions extends KeyGrantOptions {
  /** The current private key file. */
  readonly oldKey: string;
  /** The new private key file: used if it exists, generated (with KEYFILE.pub) if not. */
  readonly newKey: string;
  /** Index files to sign with both keys. */
  readonly indexes: readonly string[];
  /** A trust-store file to grant the new key in. */
  readonly trustStore?: string | undefined;
  /** Set the old key's expiry in the trust store: clients stop accepting it then. */
  readonly retireOld?: string | undefined;
}

export interface KeyRotateResult {
  readonly oldKeyId: string;
  readonly newKeyId: string;
  /** Base64 of the new public key. */
  readonly newPublicKey: string;
  readonly generated: boolean;
  readonly indexes: readonly SignResult[];
  readonly trustStore: string | null;
}

/**
 * Rotation without a gap: every index carries both signatures before any
 * client is told to prefer the new key, so clients that trust only the old
 * key and clients that trust only the new one both keep mounting. Indexes are
 * signed before the store is written; a failure leaves the store unchanged.
 */
export async function runKeyRotate(options: KeyRotateOptions): Promise<KeyRotateResult> {
  const oldKey = await readKeyFile(options.oldKey);
  const exists = await stat(options.newKey).then(
    () => true,
    () => false,
  );
  if (!exists) await runKeygen({ keyFile: options.newKey });
  const newKey = await readKeyFile(options.newKey);
  if (newKey.keyId === oldKey.keyId) throw new UsageError(`the old and the new key are the same key (${oldKey.keyId})`);
  if (options.retireOld !== undefined && parseExpiry(options.retireOld) === undefined) {
    throw new UsageError(`--retire-old: "${options.retireOld}" is not a UTC date like 2027-01-31`);
  }
  const signed: SignResult[] = [];
  for (const index of options.indexes) {
    await runSign({ index, key: options.oldKey });
    signed.push(await runSign({ index, key: options.newKey }));
  }
  if (options.trustStore) {
    let file = await readTrustStoreForEdit(options.trustStore);
    const oldGrant = file.lines.find(
      (l): l is TrustStoreFile['lines'][number] & { kind: 'key' } =>
        l.kind === 'key' && Buffer.from(l.publicKey).equals(Buffer.from(oldKey.publicKey)),
    );
    file = grantKey(file, newKey.publicKey, {
      ...grantOptions(options),
      scope: options.scope ?? oldGrant?.scope,
    });
    if (options.retireOld !== undefined) {
      file = grantKey(file, oldKey.publicKey, {
        scope: oldGrant?.scope,
        label: oldGrant?.label,
        expires: parseExpiry(options.retireOld),
      });
    }
    await writeTrustStoreFile(file);
  }
  return {
    oldKeyId: oldKey.keyId,
    newKeyId: newKey.keyId,
    newPublicKey: b64(newKey.publicKey),
    generated: !exists,
    indexes: signed,
    trustStore: options.trustStore ?? null,
  };
}

function grantOptions(o: KeyGrantOptions): KeyGrantOptions {
  if (o.expires === undefined) return o;
  const expires = parseExpiry(o.expires);
  if (expires === undefined) throw new UsageError(`--expires: "${o.expires}" is not a UTC date like 2027-01-31`);
  return { ...o, expires };
}

function b64(k: Uint8Array): string {
  return Buffer.from(k).toString('base64');
}
