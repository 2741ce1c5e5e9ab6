import { readFile } from 'node:fs/promises';
import { decodeIndex, fsError, IndexFormatError, UsageError } from '@thfc/format';
import { type AttestationReport, checkAttestation, type ExpectedIndex } from './attestation-check.js';
import { TpmError } from './errors.js';
import { parseLog } from './measurement-event.js';
import { decodeQuoteFile, parseAttest } from './quote-file.js';
import { Tpm2Tools } from './tpm.js';

export interface VerifyOptions {
  /** A quote file from `thfc-attest quote`. */
  readonly quote: string;
  /** The measurement log the quote is said to cover. */
  readonly log: string;
  /** Index files the verifier expects to have been mounted. */
  readonly expect: readonly string[];
  /** The attestation key's public key (PEM), known to the verifier beforehand. */
  readonly akPublicKey: string;
  /** The nonce the verifier sent with its challenge, hex. */
  readonly nonce: string;
}

/**
 * Checks a quote against a log and the expected indexes. The quote's
 * signature is checked by tpm2_checkquote (no TPM needed); everything after
 * that is checkAttestation, on the signed message itself.
 */
export async function runVerify(options: VerifyOptions, signal?: AbortSignal): Promise<AttestationReport> {
  const read = async (path: string, what: string) => {
    try {
      return await readFile(path);
    } catch (e) {
      throw fsError(e, `${what} ${path}`);
    }
  };
  const nonce = parseNonce(options.nonce);
  const quote = decodeQuoteFile((await read(options.quote, 'quote')).toString('utf8'), options.quote);
  const akPublicKeyPem = (await read(options.akPublicKey, 'AK public key')).toString('utf8');
  const entries = parseLog((await read(options.log, 'log')).toString('latin1'), options.log);
  const expected: ExpectedIndex[] = [];
  for (const path of options.expect) {
    try {
      const d = decodeIndex(await read(path, 'index'));
      expected.push({
        digest: d.digest,
        name: d.index.header.name,
        // The index's own id table answers: no Set of every id (~1.5 GB at 4M blocks).
        blocks: { has: (id: string) => d.index.findBlock(id) >= 0 },
        source: path,
      });
    } catch (e) {
      if (e instanceof IndexFormatError) throw new IndexFormatError(e.reason, e.line, e.field, path);
      throw e;
    }
  }
  try {
    await new Tpm2Tools().checkQuote({ akPublicKeyPem, quote, nonce }, signal);
  } catch (e) {
    if (!(e instanceof TpmError) || /not found: install/.test(e.message)) throw e;
    return {
      ok: false,
      pcr: null,
      banks: [],
      quotedEntries: null,
      unquotedEntries: entries.length,
      indexes: [],
      blocks: 0,
      problems: [`the quote does not verify with the AK ${options.akPublicKey} and this nonce: ${e.message}`],
    };
  }
  return checkAttestation({ entries, attest: parseAttest(quote.message), nonce, expected });
}

/** A verifier's nonce: 1 to 32 bytes, hex (tpm2_quote takes at most a digest's worth of qualifying data). */
export function parseNonce(hex: string): Buffer {
  if (!/^([0-9a-fA-F]{2}){1,32}$/.test(hex)) {
    throw new UsageError(`nonce must be 2 to 64 hex digits, not "${hex.slice(0, 80)}"`);
  }
  return Buffer.from(hex, 'hex');
}
