import { createHash } from 'node:crypto';

/**
 * PCR banks and the extend operation, as a TPM 2.0 does them:
 *   PCR_new = H(PCR_old || digest)
 * with H the bank's hash and PCRs starting at all zeros. The log keeps a
 * SHA-1 bank (what GRUB-IMA and TPM 1.1 had) and a SHA-256 bank (what a
 * verifier should rely on: SHA-1 chains can be forged by whoever can find
 * collisions, see docs/TRUST.md).
 */
export const PCR_BANKS = ['sha1', 'sha256'] as const;
export type PcrBank = (typeof PCR_BANKS)[number];

export const DIGEST_LENGTH: Readonly<Record<PcrBank, number>> = { sha1: 20, sha256: 32 };
/** A PC-client TPM has PCRs 0 to 23. */
export const PCR_COUNT = 24;

export type BankDigests = Readonly<Record<PcrBank, Buffer>>;

export function isPcrBank(s: string): s is PcrBank {
  return (PCR_BANKS as readonly string[]).includes(s);
}

export function zeroPcr(bank: PcrBank): Buffer {
  return Buffer.alloc(DIGEST_LENGTH[bank]);
}

export function bankHash(bank: PcrBank, data: string | Uint8Array): Buffer {
  return createHash(bank).update(data).digest();
}

export function extendPcr(bank: PcrBank, current: Uint8Array, digest: Uint8Array): Buffer {
  return createHash(bank).update(current).update(digest).digest();
}

/** The values of one PCR in every bank, chained from zero through `digests`. */
export function replayPcr(digests: Iterable<BankDigests>): BankDigests {
  let sha1 = zeroPcr('sha1');
  let sha256 = zeroPcr('sha256');
  for (const d of digests) {
    sha1 = extendPcr('sha1', sha1, d.sha1);
    sha256 = extendPcr('sha256', sha256, d.sha256);
  }
  return { sha1, sha256 };
}
