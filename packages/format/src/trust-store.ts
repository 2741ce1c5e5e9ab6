import { InvalidArgumentError, TrustStoreFormatError } from './errors.js';
import { keyIdOf } from './signature.js';

/**
 * Trust store format v1: which publisher keys a client accepts, for which
 * image names and until when, and which keys are revoked (CVMFS's whitelist
 * and blacklist in one file). docs/TRUST.md is its prose twin.
 *
 *   thfc-trust 1
 *   # comment lines and blank lines are kept as they are
 *   key <public key, base64> [expires=<utc-time>] [scope=<glob>[,<glob>…]] [label=<word>]
 *   revoke <public key, base64 | key id>
 *
 * A store may be one file or a directory of them; they are merged (a key is
 * accepted if any of its `key` lines allows the image, and a `revoke` line in
 * any file overrides every `key` line). The decoder is strict: an unknown
 * option or word is an error naming its line, never ignored, because a
 * misread revocation would fail open.
 */
export const TRUST_STORE_MAGIC = 'thfc-trust';
export const TRUST_STORE_VERSION = 1;
/** The longest legal line is ~1.2 KB (a long scope list); the bound stops garbage from growing a buffer. */
export const MAX_TRUST_LINE_LENGTH = 4096;

/** One `key` line: a key the client accepts, with its limits. */
export interface KeyGrant {
  readonly publicKey: Uint8Array;
  readonly keyId: string;
  /** `YYYY-MM-DDThh:mm:ssZ`: signatures by this key are refused from this instant on. */
  readonly expires?: string | undefined;
  /** Image-name globs the key may sign; undefined means any name. */
  readonly scope?: readonly string[] | undefined;
  /** A word for people: who or what the key is for. */
  readonly label?: string | undefined;
  /** `FILE line N`, for messages. */
  readonly source: string;
}

/** One `revoke` line. A key id revokes every key with that id (fail closed: never fewer keys than meant). */
export interface Revocation {
  readonly keyId: string;
  readonly publicKey?: Uint8Array | undefined;
  readonly source: string;
}

export type TrustStoreLine =
  | { readonly kind: 'text'; readonly text: string }
  | ({ readonly kind: 'key' } & KeyGrant)
  | ({ readonly kind: 'revoke' } & Revocation);

/** One decoded file, line by line, so an edit (add, revoke) rewrites it with its comments in place. */
export interface TrustStoreFile {
  readonly source: string;
  readonly lines: readonly TrustStoreLine[];
}

/** What a policy decision reads: every grant and every revocation, from all files. */
export interface TrustStore {
  readonly grants: readonly KeyGrant[];
  readonly revocations: readonly Revocation[];
  /** Where it came from, for messages: file names, or `--trust`. */
  readonly sources: readonly string[];
}

const B64_PUB = /^[A-Za-z0-9+/]{43}=$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const UTC_TIME = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$/;
const DATE_ONLY = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
/** Image-name characters plus `*` (any run) and `?` (one character). */
const GLOB = /^[A-Za-z0-9._+*?-]{1,128}$/;
const LABEL = /^[A-Za-z0-9._@+-]{1,64}$/;

/**
 * `2027-01-01` (midnight UTC, the start of that day) or `2027-01-01T12:00:00Z`,
 * returned in the second form. Anything else is undefined.
 */
export function parseExpiry(text: string): string | undefined {
  const full = DATE_ONLY.test(text) ? `${text}T00:00:00Z` : text;
  if (!UTC_TIME.test(full)) return undefined;
  // Reject 2026-02-31 and the like: the instant must print back as written.
  const ms = Date.parse(full);
  if (Number.isNaN(ms) || new Date(ms).toISOString().replace('.000Z', 'Z') !== full) return undefined;
  return full;
}

export function isScopeGlob(glob: string): boolean {
  return GLOB.test(glob);
}

/** Whole-name glob match: `*` is any run of characters (including none), `?` exactly one. */
export function matchesGlob(name: string, glob: string): boolean {
  const re = new RegExp(
    `^${[...glob].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+]/g, '\\$&'))).join('')}$`,
  );
  return re.test(name);
}

/** Decodes one trust-store file. `source` names it in errors and in each line's `source`. */
export function decodeTrustStore(bytes: Uint8Array, source = 'trust store'): TrustStoreFile {
  const text = Buffer.from(bytes).toString('latin1');
  const fail: (why: string, line: number | undefined, field?: string) => never = (why, line, field) => {
    throw new TrustStoreFormatError(why, line, field, source);
  };
  if (text.length === 0) fail('empty file', undefined);
  if (!text.endsWith('\n')) fail('truncated: last line has no newline', text.split('\n').length);
  const raw = text.slice(0, -1).split('\n');
  const lines: TrustStoreLine[] = [];
  raw.forEach((l, i) => {
    const n = i + 1;
    if (l.length > MAX_TRUST_LINE_LENGTH) fail(`line longer than ${MAX_TRUST_LINE_LENGTH} bytes`, n);
    for (let j = 0; j < l.length; j++) {
      const b = l.charCodeAt(j);
      if (b < 0x20 || b > 0x7e) fail(`byte 0x${b.toString(16).padStart(2, '0')} is not printable ASCII`, n);
    }
    if (i === 0) {
      const [magic = '', version, ...rest] = l.split(' ');
      if (magic !== TRUST_STORE_MAGIC)
        fail(`not a thfc trust store (first line must be "${TRUST_STORE_MAGIC} ${TRUST_STORE_VERSION}")`, n, 'magic');
      if (version !== String(TRUST_STORE_VERSION) || rest.length)
        fail(
          `trust store version "${l.slice(magic.length + 1, magic.length + 21)}" is not supported (this build reads version ${TRUST_STORE_VERSION})`,
          n,
          'version',
        );
      lines.push({ kind: 'text', text: l });
      return;
    }
    if (l === '' || l.startsWith('#')) {
      lines.push({ kind: 'text', text: l });
      return;
    }
    const words = l.split(' ');
    if (words.some((w) => w === '')) fail('words are separated by exactly one space', n);
    const [verb, subject, ...opts] = words as [string, string | undefined, ...string[]];
    const where = `${source} line ${n}`;
    if (verb === 'revoke') {
      if (subject === undefined) fail('expected "revoke <public key or key id>"', n, 'revoke');
      if (opts.length) fail('a revoke line takes one key', n, 'revoke');
      if (KEY_ID.test(subject)) lines.push({ kind: 'revoke', keyId: subject, source: where });
      else if (B64_PUB.test(subject)) {
        const publicKey = publicKeyBytes(subject, (why) => fail(why, n, 'public-key'));
        lines.push({ kind: 'revoke', keyId: keyIdOf(publicKey), publicKey, source: where });
      } else fail('expected a 44-character base64 public key or a 16-hex-digit key id', n, 'revoke');
      return;
    }
    if (verb !== 'key') fail(`unknown line "${verb.slice(0, 20)}" (expected key, revoke or a # comment)`, n);
    if (subject === undefined || !B64_PUB.test(subject))
      fail('expected "key <44-character base64 public key> [options]"', n, 'public-key');
    const publicKey = publicKeyBytes(subject, (why) => fail(why, n, 'public-key'));
    const { expires, scope, label } = keyOptions(opts, (why, field) => fail(why, n, field));
    lines.push({ kind: 'key', publicKey, keyId: keyIdOf(publicKey), expires, scope, label, source: where });
  });
  return { source, lines };
}

/** The options of a `key` line: expires=, scope= and label=, each at most once. */
function keyOptions(
  opts: readonly string[],
  fail: (why: string, field: string) => never,
): { expires: string | undefined; scope: string[] | undefined; label: string | undefined } {
  const seen = new Set<string>();
  let expires: string | undefined;
  let scope: string[] | undefined;
  let label: string | undefined;
  for (const opt of opts) {
    const eq = opt.indexOf('=');
    const name = eq < 0 ? opt : opt.slice(0, eq);
    const value = eq < 0 ? '' : opt.slice(eq + 1);
    if (name !== 'expires' && name !== 'scope' && name !== 'label')
      fail(`unknown option "${name.slice(0, 20)}" (expected expires=, scope= or label=)`, name.slice(0, 20));
    if (seen.has(name)) fail(`${name}= given twice`, name);
    seen.add(name);
    if (value === '') fail(`${name}= needs a value`, name);
    if (name === 'expires') {
      expires = parseExpiry(value);
      if (expires === undefined)
        fail(`"${value.slice(0, 30)}" is not a UTC date like 2027-01-31 or 2027-01-31T12:00:00Z`, name);
    } else if (name === 'scope') {
      scope = value.split(',');
      const bad = scope.find((g) => !isScopeGlob(g));
      if (bad !== undefined) fail(`"${bad.slice(0, 40)}" is not an image-name glob (A-Z a-z 0-9 . _ + - * ?)`, name);
    } else {
      if (!LABEL.test(value)) fail(`"${value.slice(0, 40)}" is not a label (1-64 of A-Z a-z 0-9 . _ @ + -)`, name);
      label = value;
    }
  }
  return { expires, scope, label };
}

function publicKeyBytes(b64: string, fail: (why: string) => never): Uint8Array {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32) fail('an Ed25519 public key is 32 bytes');
  return raw;
}

/** Encodes a file back to text; decode(encode(f)) gives the same lines. */
export function encodeTrustStore(file: TrustStoreFile): Uint8Array {
  const out = file.lines.map((l) => {
    if (l.kind === 'text') return l.text;
    if (l.kind === 'revoke') return `revoke ${l.publicKey ? b64(l.publicKey) : l.keyId}`;
    return [
      'key',
      b64(l.publicKey),
      ...(l.expires ? [`expires=${l.expires}`] : []),
      ...(l.scope ? [`scope=${l.scope.join(',')}`] : []),
      ...(l.label ? [`label=${l.label}`] : []),
    ].join(' ');
  });
  if (out[0] !== `${TRUST_STORE_MAGIC} ${TRUST_STORE_VERSION}`)
    out.unshift(`${TRUST_STORE_MAGIC} ${TRUST_STORE_VERSION}`);
  return Buffer.from(`${out.join('\n')}\n`, 'latin1');
}

/** A new, empty file with a comment saying what it is. */
export function emptyTrustStore(source: string): TrustStoreFile {
  return {
    source,
    lines: [
      { kind: 'text', text: `${TRUST_STORE_MAGIC} ${TRUST_STORE_VERSION}` },
      { kind: 'text', text: '# thfc trust store: see docs/TRUST.md' },
    ],
  };
}

export interface GrantOptions {
  readonly expires?: string | undefined;
  readonly scope?: readonly string[] | undefined;
  readonly label?: string | undefined;
}

/**
 * Adds or replaces the `key` line of `publicKey` (one line per key per file,
 * so re-adding updates its limits). Refuses a key the file revokes: a
 * revocation is only undone by editing the file by hand, on purpose.
 */
export function grantKey(file: TrustStoreFile, publicKey: Uint8Array, options: GrantOptions = {}): TrustStoreFile {
  const keyId = keyIdOf(publicKey);
  if (file.lines.some((l) => l.kind === 'revoke' && revokes(l, publicKey)))
    throw new InvalidArgumentError(`key ${keyId} is revoked in ${file.source}; remove the revoke line by hand first`);
  if (options.expires !== undefined && parseExpiry(options.expires) !== options.expires)
    throw new InvalidArgumentError(`bad expiry "${options.expires}"`);
  const badGlob = options.scope?.find((g) => !isScopeGlob(g));
  if (badGlob !== undefined) throw new InvalidArgumentError(`"${badGlob}" is not an image-name glob`);
  if (options.label !== undefined && !LABEL.test(options.label))
    throw new InvalidArgumentError(`"${options.label}" is not a label (1-64 of A-Z a-z 0-9 . _ @ + -)`);
  const line: TrustStoreLine = {
    kind: 'key',
    publicKey,
    keyId,
    expires: options.expires,
    scope: options.scope?.length ? options.scope : undefined,
    label: options.label,
    source: file.source,
  };
  const at = file.lines.findIndex((l) => l.kind === 'key' && sameKey(l.publicKey, publicKey));
  const lines = file.lines.filter((l, i) => i <= at || !(l.kind === 'key' && sameKey(l.publicKey, publicKey)));
  if (at >= 0) lines[at] = line;
  else lines.push(line);
  return { source: file.source, lines };
}

/**
 * Removes the key's `key` lines and appends a `revoke` line (once). Given only
 * a key id, every key with that id is dropped and the line names the id.
 */
export function revokeKey(file: TrustStoreFile, key: Uint8Array | string): TrustStoreFile {
  const byId = typeof key === 'string';
  if (byId && !KEY_ID.test(key)) throw new InvalidArgumentError(`"${key}" is not a key id (16 hex digits)`);
  const keyId = byId ? key : keyIdOf(key);
  const matches = (publicKey: Uint8Array) => (byId ? keyIdOf(publicKey) === keyId : sameKey(publicKey, key));
  const lines = file.lines.filter((l) => !(l.kind === 'key' && matches(l.publicKey)));
  const already = lines.some(
    (l) => l.kind === 'revoke' && (byId ? l.keyId === keyId && !l.publicKey : revokes(l, key)),
  );
  if (!already) lines.push({ kind: 'revoke', keyId, publicKey: byId ? undefined : key, source: file.source });
  return { source: file.source, lines };
}

/** Merges files into the store a decision reads. */
export function mergeTrustStores(files: readonly TrustStoreFile[]): TrustStore {
  const grants: KeyGrant[] = [];
  const revocations: Revocation[] = [];
  for (const f of files) {
    for (const l of f.lines) {
      if (l.kind === 'key') grants.push(l);
      else if (l.kind === 'revoke') revocations.push(l);
    }
  }
  return { grants, revocations, sources: files.map((f) => f.source) };
}

/** One store of several: every grant and every revocation of each (a revocation in one overrides a grant in another). */
export function combineTrustStores(...stores: readonly TrustStore[]): TrustStore {
  return {
    grants: stores.flatMap((s) => s.grants),
    revocations: stores.flatMap((s) => s.revocations),
    sources: stores.flatMap((s) => s.sources),
  };
}

/** `--trust KEY…`: a store of bare keys, with no expiry, scope or revocation. */
export function trustStoreOfKeys(keys: readonly Uint8Array[], source = '--trust'): TrustStore {
  return {
    grants: keys.map((publicKey) => ({ publicKey, keyId: keyIdOf(publicKey), source })),
    revocations: [],
    sources: [source],
  };
}

export function revokes(r: Revocation, publicKey: Uint8Array): boolean {
  return r.publicKey ? sameKey(r.publicKey, publicKey) : r.keyId === keyIdOf(publicKey);
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

function b64(k: Uint8Array): string {
  return Buffer.from(k).toString('base64');
}
