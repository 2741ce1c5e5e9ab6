import { writeFile } from 'node:fs/promises';
import { fsError } from '@thfc/format';
import { TpmError } from './errors.js';
import { DEFAULT_MEASUREMENT_PCR } from './measurement-log.js';
import { PCR_BANKS } from './pcr-bank.js';
import { encodeQuoteFile, parseAttest } from './quote-file.js';
import { Tpm2Tools } from './tpm.js';
import { parseNonce } from './verify.js';

export interface QuoteOptions {
  /** The attestation key: a context file from `thfc-attest ak`, or a persistent handle such as 0x81010002. */
  readonly ak: string;
  /** The verifier's nonce, hex. */
  readonly nonce: string;
  readonly out: string;
  readonly pcr?: number | undefined;
  readonly tcti?: string | undefined;
}

export interface QuoteResult {
  readonly out: string;
  readonly pcr: number;
  readonly banks: readonly string[];
  readonly pcrDigest: string;
}

/** Quotes the measurement PCR in every bank the log keeps that the TPM has (sha1, sha256), into one file. */
export async function runQuote(options: QuoteOptions, signal?: AbortSignal): Promise<QuoteResult> {
  const tpm = new Tpm2Tools({ tcti: options.tcti });
  const nonce = parseNonce(options.nonce);
  const pcr = options.pcr ?? DEFAULT_MEASUREMENT_PCR;
  const have = await tpm.activeBanks(signal);
  const banks = PCR_BANKS.filter((b) => have.includes(b));
  if (banks.length === 0) throw new TpmError(`the TPM has neither a sha1 nor a sha256 PCR bank`);
  const quote = await tpm.quote({ ak: options.ak, pcr, banks, nonce }, signal);
  try {
    await writeFile(options.out, encodeQuoteFile(quote));
  } catch (e) {
    throw fsError(e, `quote ${options.out}`);
  }
  return { out: options.out, pcr, banks, pcrDigest: parseAttest(quote.message).pcrDigest.toString('hex') };
}
