#!/usr/bin/env node
import { ignoreClosedOutput, oneLineParseErrors, reportError } from '@thfc/cli';
import { EXIT, ThfcError, UsageError } from '@thfc/format';
import { Command, CommanderError } from 'commander';
import { runAk } from './ak.js';
import { DEFAULT_MEASUREMENT_PCR } from './measurement-log.js';
import { runQuote } from './quote.js';
import { runReplay } from './replay.js';
import { runVerify } from './verify.js';

/**
 * thfc-attest: replay a measurement log, make an attestation key and a quote
 * with the TPM, and verify a quote against a log and the expected indexes.
 * A table of commands over run*() functions; the only file touching
 * `process`, and where errors become exit codes (1: verification failed).
 */

const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (controller.signal.aborted) process.exit(EXIT.INTERRUPTED);
    controller.abort(new Error(`interrupted by ${sig}`));
  });
}

/** Marks a failed verification that was already printed: exit 1 with no further message. */
class Reported extends Error {}

function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
}

const pcrNumber = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 23) throw new UsageError(`--pcr must be a PCR number 0-23, not "${v}"`);
  return n;
};

const program = new Command('thfc-attest')
  .description('Measurement logs and TPM attestation for thfc mounts (docs/TRUST.md).')
  .version('0.1.0')
  .exitOverride();

program
  .command('replay')
  .description('recompute the final PCR values (sha1 and sha256 banks) a measurement log implies')
  .argument('<log>', 'a measurement log, e.g. a copy of MOUNTPOINT/.thfc/measurements')
  .option('--json', 'print the result as JSON')
  .action(async (log: string, o) => {
    const r = await runReplay({ log });
    print(!!o.json, r, () =>
      [
        ...r.pcrs.flatMap((p) => [`PCR ${p.pcr} sha1   ${p.sha1}`, `PCR ${p.pcr} sha256 ${p.sha256}`]),
        `${r.entries} entries: ${r.indexes} indexes, ${r.blocks} blocks`,
      ].join('\n'),
    );
  });

program
  .command('ak')
  .description('create an attestation key in the TPM: DIR/ak.ctx for quoting, DIR/ak.pub.pem for verifiers')
  .requiredOption('--dir <dir>', 'directory for the key files')
  .option('--tcti <tcti>', 'TPM connection, e.g. swtpm:host=127.0.0.1,port=2321 (default: tpm2-tools default)')
  .option('--json', 'print the result as JSON')
  .action(async (o) => {
    const r = await runAk({ dir: o.dir, tcti: o.tcti }, controller.signal);
    print(!!o.json, r, () => `attestation key: ${r.context}\npublic key for verifiers: ${r.publicKey}`);
  });

program
  .command('quote')
  .description("quote the measurement PCR (sha1 and sha256 banks) with the verifier's nonce into one file")
  .requiredOption('--ak <ctx-or-handle>', 'attestation key: DIR/ak.ctx or a persistent handle (0x81…)')
  .requiredOption('--nonce <hex>', "the verifier's nonce, 2 to 64 hex digits")
  .requiredOption('--out <file>', 'quote file to write')
  .option('--pcr <n>', `the measurement PCR (default ${DEFAULT_MEASUREMENT_PCR})`, pcrNumber)
  .option('--tcti <tcti>', 'TPM connection (default: tpm2-tools default)')
  .option('--json', 'print the result as JSON')
  .action(async (o) => {
    const r = await runQuote({ ak: o.ak, nonce: o.nonce, out: o.out, pcr: o.pcr, tcti: o.tcti }, controller.signal);
    print(!!o.json, r, () => `quoted PCR ${r.pcr} (${r.banks.join('+')}) into ${r.out}: digest ${r.pcrDigest}`);
  });

program
  .command('verify')
  .description('check a quote, that the log replays to it, and that it measured only expected indexes and their blocks')
  .requiredOption('--quote <file>', 'quote file from thfc-attest quote')
  .requiredOption('--log <file>', 'the measurement log')
  .requiredOption('--expect <index...>', 'the index files expected to be mounted (NAME.idx…)')
  .requiredOption('--ak <pem>', "the attestation key's public key (ak.pub.pem)")
  .requiredOption('--nonce <hex>', 'the nonce sent with the challenge')
  .option('--json', 'print the report as JSON')
  .action(async (o) => {
    const r = await runVerify(
      { quote: o.quote, log: o.log, expect: o.expect, akPublicKey: o.ak, nonce: o.nonce },
      controller.signal,
    );
    print(!!o.json, r, () =>
      [
        ...r.indexes.map((i) => `index ${i.image} ${i.digest} key ${i.keyId}${i.expected ? '' : ' UNEXPECTED'}`),
        ...(r.quotedEntries === null
          ? []
          : [
              `PCR ${r.pcr} (${r.banks.join('+')}): ${r.quotedEntries} entries quoted, ${r.blocks} blocks${r.unquotedEntries ? `; ${r.unquotedEntries} later entries not covered by the quote` : ''}`,
            ]),
        ...r.problems.map((p) => `FAILED: ${p}`),
        r.ok ? 'ok: the quote, the log and the expected indexes agree' : 'verification FAILED',
      ].join('\n'),
    );
    if (!r.ok) throw new Reported();
  });

ignoreClosedOutput();
try {
  oneLineParseErrors(program);
  await program.parseAsync(process.argv);
} catch (e) {
  process.exitCode = report(e);
}

function report(e: unknown): number {
  if (e instanceof Reported) return EXIT.CHECK_FAILED;
  if (controller.signal.aborted && !(e instanceof ThfcError) && !(e instanceof CommanderError)) return EXIT.INTERRUPTED;
  return reportError('thfc-attest', e);
}
