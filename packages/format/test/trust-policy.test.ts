import { describe, expect, it } from 'vitest';
import { TrustRefusedError } from '../src/errors.js';
import { generateSigningKey, keyIdOf, parsePublicKey } from '../src/signature.js';
import { type CheckedSignature, decideTrust, requireTrusted } from '../src/trust-policy.js';
import { decodeTrustStore, mergeTrustStores, type TrustStore, trustStoreOfKeys } from '../src/trust-store.js';

const NOW = new Date('2026-11-27T09:00:00Z');
const key = () => parsePublicKey(generateSigningKey().publicKeyPem);
const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64');
const sig = (publicKey: Uint8Array, valid = true): CheckedSignature => ({
  keyId: keyIdOf(publicKey),
  publicKey,
  valid,
});
const store = (...lines: string[]): TrustStore =>
  mergeTrustStores([decodeTrustStore(Buffer.from(`thfc-trust 1\n${lines.map((l) => `${l}\n`).join('')}`), 's')]);

describe('decideTrust', () => {
  const [oldKey, newKey, other] = [key(), key(), key()];

  it('rotation: an index signed by the old and the new key is accepted by a client trusting either', () => {
    const both = [sig(oldKey), sig(newKey)];
    const a = decideTrust(both, 'debian', store(`key ${b64(oldKey)}`), NOW);
    const b = decideTrust(both, 'debian', store(`key ${b64(newKey)}`), NOW);
    expect(a).toMatchObject({ accepted: true, keyId: keyIdOf(oldKey) });
    expect(b).toMatchObject({ accepted: true, keyId: keyIdOf(newKey) });
    expect(decideTrust(both, 'debian', store(`key ${b64(other)}`), NOW)).toMatchObject({
      accepted: false,
      reason: 'untrusted',
    });
  });

  it('rotation after the old key is revoked: the new signature still carries the index', () => {
    const s = store(`key ${b64(newKey)}`, `revoke ${b64(oldKey)}`);
    expect(decideTrust([sig(oldKey), sig(newKey)], 'debian', s, NOW)).toMatchObject({
      accepted: true,
      keyId: keyIdOf(newKey),
      verdicts: [{ verdict: 'revoked' }, { verdict: 'accepted' }],
    });
  });

  it('expiry: accepted before the instant, refused from it on, with the date and the line', () => {
    const s = store(`key ${b64(oldKey)} expires=2026-12-01`);
    expect(decideTrust([sig(oldKey)], 'debian', s, NOW).accepted).toBe(true);
    const d = decideTrust([sig(oldKey)], 'debian', s, new Date('2026-12-01T00:00:00Z'));
    expect(d).toMatchObject({ accepted: false, reason: 'expired' });
    expect(!d.accepted && d.why).toBe(`key ${keyIdOf(oldKey)} expired on 2026-12-01T00:00:00Z (s line 2)`);
  });

  it('revocation: by public key or by key id, overriding a grant in any file', () => {
    const grant = decodeTrustStore(Buffer.from(`thfc-trust 1\nkey ${b64(oldKey)}\n`), 'a.trust');
    const byId = decodeTrustStore(Buffer.from(`thfc-trust 1\nrevoke ${keyIdOf(oldKey)}\n`), 'b.trust');
    expect(decideTrust([sig(oldKey)], 'x', mergeTrustStores([grant]), NOW).accepted).toBe(true);
    const d = decideTrust([sig(oldKey)], 'x', mergeTrustStores([grant, byId]), NOW);
    expect(d).toMatchObject({ accepted: false, reason: 'revoked' });
    expect(!d.accepted && d.why).toMatch(/is revoked \(b\.trust line 2\)/);
  });

  it('scope: accepted for a matching name, refused with the globs for another', () => {
    const s = store(`key ${b64(oldKey)} scope=debian-*,alpine`);
    expect(decideTrust([sig(oldKey)], 'debian-12', s, NOW).accepted).toBe(true);
    expect(decideTrust([sig(oldKey)], 'alpine', s, NOW).accepted).toBe(true);
    const d = decideTrust([sig(oldKey)], 'ubuntu', s, NOW);
    expect(d).toMatchObject({ accepted: false, reason: 'out-of-scope' });
    expect(!d.accepted && d.why).toMatch(/out of scope: it may sign only debian-\*, alpine, not ubuntu/);
  });

  it('two grants of one key: any one that allows the image is enough', () => {
    const s = store(`key ${b64(oldKey)} scope=a expires=2026-01-01`, `key ${b64(oldKey)} scope=b`);
    expect(decideTrust([sig(oldKey)], 'b', s, NOW).accepted).toBe(true);
    expect(decideTrust([sig(oldKey)], 'a', s, NOW)).toMatchObject({ reason: 'out-of-scope' });
  });

  it('unsigned, invalid and untrusted each say so', () => {
    const s = trustStoreOfKeys([oldKey]);
    expect(decideTrust([], 'x', s, NOW)).toMatchObject({ reason: 'unsigned', why: 'the index is not signed' });
    expect(decideTrust([], 'x', s, NOW, 'profile')).toMatchObject({ why: 'the profile is not signed' });
    expect(decideTrust([sig(oldKey, false)], 'x', s, NOW)).toMatchObject({
      reason: 'invalid',
      why: `the signature by trusted key ${keyIdOf(oldKey)} does not verify (the index was changed)`,
    });
    const u = decideTrust([sig(other), sig(newKey)], 'x', s, NOW);
    expect(u).toMatchObject({ reason: 'untrusted' });
    expect(!u.accepted && u.why).toBe(`signed only by untrusted keys ${keyIdOf(other)}, ${keyIdOf(newKey)}`);
  });

  it('an invalid signature by an untrusted key does not spoil a valid trusted one', () => {
    expect(decideTrust([sig(other, false), sig(oldKey)], 'x', trustStoreOfKeys([oldKey]), NOW).accepted).toBe(true);
  });

  it('the reported reason is the most telling one present, and the others are listed', () => {
    const s = store(`key ${b64(newKey)} expires=2026-01-01`, `revoke ${b64(oldKey)}`);
    const d = decideTrust([sig(newKey), sig(oldKey), sig(other)], 'x', s, NOW);
    expect(d).toMatchObject({ reason: 'revoked' });
    expect(!d.accepted && d.why).toMatch(
      new RegExp(`other signatures: ${keyIdOf(newKey)} expired, ${keyIdOf(other)} untrusted$`),
    );
  });
});

describe('requireTrusted', () => {
  it('returns the accepting key id, or throws a TrustRefusedError naming the image and the rule', () => {
    const k = key();
    expect(requireTrusted(decideTrust([sig(k)], 'x', trustStoreOfKeys([k]), NOW), 'x (u)')).toBe(keyIdOf(k));
    try {
      requireTrusted(decideTrust([], 'x', trustStoreOfKeys([k]), NOW), 'x (u)');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TrustRefusedError);
      expect((e as TrustRefusedError).reason).toBe('unsigned');
      expect((e as Error).message).toBe('refusing to mount x (u): the index is not signed');
    }
  });
});
