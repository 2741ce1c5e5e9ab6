import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TrustStoreFormatError } from '../src/errors.js';
import { generateSigningKey, keyIdOf, parsePublicKey } from '../src/signature.js';
import {
  decodeTrustStore,
  emptyTrustStore,
  encodeTrustStore,
  grantKey,
  matchesGlob,
  mergeTrustStores,
  parseExpiry,
  revokeKey,
  trustStoreOfKeys,
} from '../src/trust-store.js';

const pub = () => parsePublicKey(generateSigningKey().publicKeyPem);
const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64');
const decode = (text: string) => decodeTrustStore(Buffer.from(text), 'acme.trust');

function errorOf(text: string): TrustStoreFormatError {
  try {
    decode(text);
  } catch (e) {
    if (e instanceof TrustStoreFormatError) return e;
    throw e;
  }
  throw new Error('decoded without error');
}

describe('decodeTrustStore', () => {
  it('reads keys with their options, revocations by key and by id, and keeps comments', () => {
    const [a, b, c] = [pub(), pub(), pub()];
    const f = decode(
      [
        'thfc-trust 1',
        '# release keys',
        '',
        `key ${b64(a)} expires=2027-01-01 scope=debian-*,ubuntu-2?.04 label=release-2026`,
        `key ${b64(b)}`,
        `revoke ${b64(c)}`,
        `revoke ${keyIdOf(b)}`,
        '',
      ].join('\n'),
    );
    expect(f.lines.map((l) => l.kind)).toEqual(['text', 'text', 'text', 'key', 'key', 'revoke', 'revoke']);
    const store = mergeTrustStores([f]);
    expect(store.grants[0]).toMatchObject({
      keyId: keyIdOf(a),
      expires: '2027-01-01T00:00:00Z',
      scope: ['debian-*', 'ubuntu-2?.04'],
      label: 'release-2026',
      source: 'acme.trust line 4',
    });
    expect(store.grants[1]?.expires).toBeUndefined();
    expect(store.revocations.map((r) => [r.keyId, r.publicKey !== undefined])).toEqual([
      [keyIdOf(c), true],
      [keyIdOf(b), false],
    ]);
  });

  it('round-trips through encode, comments and order included', () => {
    const text = `thfc-trust 1\n# hi\nkey ${b64(pub())} scope=a,b label=x\n\nrevoke 0123456789abcdef\n`;
    expect(Buffer.from(encodeTrustStore(decode(text))).toString()).toBe(text);
  });

  it.each([
    ['', undefined, undefined, /empty file/],
    ['thfc-trust 1', 1, undefined, /no newline/],
    ['thfc-index 1\n', 1, 'magic', /not a thfc trust store/],
    ['thfc-trust 2\n', 1, 'version', /version "2" is not supported/],
    ['thfc-trust 1\nallow x\n', 2, undefined, /unknown line "allow"/],
    ['thfc-trust 1\nkey abc\n', 2, 'public-key', /44-character base64/],
    ['thfc-trust 1\nkey  x\n', 2, undefined, /exactly one space/],
    ['thfc-trust 1\nrevoke\n', 2, 'revoke', /expected "revoke/],
    ['thfc-trust 1\nrevoke 0123\n', 2, 'revoke', /16-hex-digit key id/],
    ['thfc-trust 1\nkey\tx\n', 2, undefined, /0x09 is not printable/],
  ])('refuses %j at line %s (%s)', (text, line, field, pattern) => {
    const e = errorOf(text);
    expect(e.line).toBe(line);
    expect(e.field).toBe(field);
    expect(e.message).toMatch(pattern);
    expect(e.message).toMatch(/^acme\.trust: /);
  });

  it.each([
    ['nope=1', 'nope', /unknown option "nope"/],
    ['expires=2027-02-30', 'expires', /not a UTC date/],
    ['expires=tomorrow', 'expires', /not a UTC date/],
    ['expires=2027-01-01 expires=2028-01-01', 'expires', /given twice/],
    ['scope=', 'scope', /needs a value/],
    ['scope=debian/x', 'scope', /not an image-name glob/],
    ['label=a%b', 'label', /not a label/],
  ])('refuses the key option %s', (opts, field, pattern) => {
    const e = errorOf(`thfc-trust 1\nkey ${b64(pub())} ${opts}\n`);
    expect([e.line, e.field]).toEqual([2, field]);
    expect(e.message).toMatch(pattern);
  });
});

describe('edits', () => {
  it('grantKey adds once and updates in place; revokeKey drops the grant and adds one revoke line', () => {
    const [a, b] = [pub(), pub()];
    let f = grantKey(emptyTrustStore('t'), a, { scope: ['x-*'] });
    f = grantKey(f, b);
    f = grantKey(f, a, { expires: '2030-01-01T00:00:00Z' });
    const keys = f.lines.filter((l) => l.kind === 'key');
    expect(keys.map((k) => [k.keyId, k.expires, k.scope])).toEqual([
      [keyIdOf(a), '2030-01-01T00:00:00Z', undefined],
      [keyIdOf(b), undefined, undefined],
    ]);
    f = revokeKey(revokeKey(f, a), a);
    const text = Buffer.from(encodeTrustStore(f)).toString();
    expect(text).not.toContain(`key ${b64(a)}`);
    expect(text.split(`revoke ${b64(a)}`)).toHaveLength(2);
    expect(() => grantKey(f, a)).toThrow(/is revoked/);
    expect(decode(text).lines).toHaveLength(f.lines.length);
  });

  it('grantKey checks its options', () => {
    expect(() => grantKey(emptyTrustStore('t'), pub(), { expires: '2027-1-1' })).toThrow(/bad expiry/);
    expect(() => grantKey(emptyTrustStore('t'), pub(), { scope: ['a b'] })).toThrow(/glob/);
  });

  it('trustStoreOfKeys makes bare grants', () => {
    const a = pub();
    expect(trustStoreOfKeys([a]).grants).toEqual([{ publicKey: a, keyId: keyIdOf(a), source: '--trust' }]);
  });
});

describe('globs and dates', () => {
  it.each([
    ['debian-12', 'debian-*', true],
    ['debian', 'debian-*', false],
    ['debian-12', '*', true],
    ['ubuntu-22.04', 'ubuntu-2?.04', true],
    ['ubuntu-22x04', 'ubuntu-22.04', false],
    ['a+b', 'a+b', true],
    ['aab', 'a+b', false],
  ])('%s against %s is %s', (name, glob, want) => {
    expect(matchesGlob(name, glob)).toBe(want);
  });

  it('parseExpiry takes a day (its first instant) or a full UTC time, nothing else', () => {
    expect(parseExpiry('2027-01-31')).toBe('2027-01-31T00:00:00Z');
    expect(parseExpiry('2027-01-31T12:30:00Z')).toBe('2027-01-31T12:30:00Z');
    expect(parseExpiry('2027-02-29')).toBeUndefined();
    expect(parseExpiry('2027-01-31T12:30:00+01:00')).toBeUndefined();
  });
});

describe('docs/TRUST.md', () => {
  it('its example store decodes, and means what the page says', () => {
    const doc = readFileSync(new URL('../../../docs/TRUST.md', import.meta.url), 'utf8');
    const shown = /<!-- trust-store-example:[^>]*-->\n```\n([\s\S]*?)```/.exec(doc)?.[1] as string;
    const f = decodeTrustStore(Buffer.from(shown), 'acme.trust');
    const store = mergeTrustStores([f]);
    expect(store.grants.map((g) => [g.expires, g.scope, g.label])).toEqual([
      ['2027-07-01T00:00:00Z', ['debian-*', 'alpine'], 'release-2026'],
      [undefined, ['debian-*'], undefined],
    ]);
    expect(store.revocations.map((r) => r.keyId)).toEqual(['3c1f0a6e9b2d4f51']);
    expect(decodeTrustStore(encodeTrustStore(f), 'acme.trust')).toEqual(f); // dates come back in full form
  });
});
