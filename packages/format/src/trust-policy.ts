import { TrustRefusedError } from './errors.js';
import { type KeyGrant, matchesGlob, revokes, type TrustStore } from './trust-store.js';

/**
 * The mount-time trust decision, as a pure function of the signatures (already
 * checked against their bytes), the image name, the store and the clock.
 *
 * Each signature is judged on its own, by these rules in this order:
 *   revoked       a `revoke` line names its key (whatever else the store says);
 *   untrusted     no `key` line names its key;
 *   invalid       its key is trusted but it does not verify (the bytes changed);
 *   expired       every `key` line for it has an `expires` at or before now;
 *   out-of-scope  no unexpired `key` line has a scope matching the image name;
 *   accepted      otherwise.
 * The file is accepted when any one signature is accepted: an index signed by
 * an old and a new key mounts for clients trusting either (rotation). With no
 * signature at all the reason is `unsigned`. When every signature is refused,
 * the reason reported is the most telling one present, in the order revoked,
 * invalid, expired, out-of-scope, untrusted.
 */
export type TrustRefusal = 'unsigned' | 'invalid' | 'untrusted' | 'revoked' | 'expired' | 'out-of-scope';

export interface CheckedSignature {
  readonly keyId: string;
  readonly publicKey: Uint8Array;
  /** Whether the signature verifies over the bytes it covers. */
  readonly valid: boolean;
}

export interface SignatureVerdict {
  readonly keyId: string;
  readonly verdict: 'accepted' | Exclude<TrustRefusal, 'unsigned'>;
  /** One clause for a message: `key 0123… is revoked (trust.d/acme.trust line 4)`. */
  readonly why: string;
}

export type TrustDecision =
  | { readonly accepted: true; readonly keyId: string; readonly grant: KeyGrant; readonly verdicts: SignatureVerdict[] }
  | {
      readonly accepted: false;
      readonly reason: TrustRefusal;
      readonly why: string;
      readonly verdicts: SignatureVerdict[];
    };

const SEVERITY: readonly TrustRefusal[] = ['revoked', 'invalid', 'expired', 'out-of-scope', 'untrusted'];

export function decideTrust(
  signatures: readonly CheckedSignature[],
  imageName: string,
  store: TrustStore,
  now: Date,
  /** What is signed, for messages: `index` or `profile`. */
  kind = 'index',
): TrustDecision {
  if (signatures.length === 0)
    return { accepted: false, reason: 'unsigned', why: `the ${kind} is not signed`, verdicts: [] };
  const verdicts: SignatureVerdict[] = [];
  for (const s of signatures) {
    const judged = judge(s, imageName, store, now, kind);
    verdicts.push(judged.verdict);
    if (judged.grant) return { accepted: true, keyId: s.keyId, grant: judged.grant, verdicts };
  }
  const reason = SEVERITY.find((r) => verdicts.some((v) => v.verdict === r)) as TrustRefusal;
  let why: string;
  if (reason === 'untrusted') why = `signed only by untrusted keys ${verdicts.map((v) => v.keyId).join(', ')}`;
  else {
    const first = verdicts.find((v) => v.verdict === reason) as SignatureVerdict;
    const others = verdicts.filter((v) => v !== first).map((v) => `${v.keyId} ${v.verdict}`);
    why = `${first.why}${others.length ? `; other signatures: ${others.join(', ')}` : ''}`;
  }
  return { accepted: false, reason, why, verdicts };
}

function judge(
  s: CheckedSignature,
  name: string,
  store: TrustStore,
  now: Date,
  kind: string,
): { verdict: SignatureVerdict; grant?: KeyGrant } {
  const v = (verdict: SignatureVerdict['verdict'], why: string): SignatureVerdict => ({ keyId: s.keyId, verdict, why });
  const revocation = store.revocations.find((r) => revokes(r, s.publicKey));
  if (revocation) return { verdict: v('revoked', `key ${s.keyId} is revoked (${revocation.source})`) };
  const pub = Buffer.from(s.publicKey);
  const grants = store.grants.filter((g) => pub.equals(Buffer.from(g.publicKey)));
  if (grants.length === 0) return { verdict: v('untrusted', `key ${s.keyId} is not in the trust store`) };
  if (!s.valid)
    return {
      verdict: v('invalid', `the signature by trusted key ${s.keyId} does not verify (the ${kind} was changed)`),
    };
  const live = grants.filter((g) => g.expires === undefined || now.getTime() < Date.parse(g.expires));
  if (live.length === 0) {
    const g = grants[0] as KeyGrant;
    return { verdict: v('expired', `key ${s.keyId} expired on ${g.expires} (${g.source})`) };
  }
  const grant = live.find((g) => g.scope === undefined || g.scope.some((glob) => matchesGlob(name, glob)));
  if (!grant) {
    const g = live[0] as KeyGrant;
    return {
      verdict: v(
        'out-of-scope',
        `key ${s.keyId} is out of scope: it may sign only ${(g.scope ?? []).join(', ')}, not ${name} (${g.source})`,
      ),
    };
  }
  return { verdict: v('accepted', `key ${s.keyId} is trusted (${grant.source})`), grant };
}

/** Throws TrustRefusedError(`refusing to mount NAME (WHERE): WHY`) unless accepted; returns the accepting key id. */
export function requireTrusted(decision: TrustDecision, what: string, action = 'mount'): string {
  if (decision.accepted) return decision.keyId;
  throw new TrustRefusedError(`refusing to ${action} ${what}: ${decision.why}`, decision.reason);
}
