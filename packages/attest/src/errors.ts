import { EXIT, LineFormatError, ThfcError } from '@thfc/format';

/**
 * The errors of attestation, each with its exit code (ERR_LOG_FORMAT: bad
 * data, from LineFormatError; ERR_TPM: the environment failed).
 */

/** A measurement log is malformed: a line that is not `PCR DIGEST TEMPLATE DATA…`, or whose digest is not its data's. */
export class MeasurementLogFormatError extends LineFormatError {
  readonly code = 'ERR_LOG_FORMAT';
  constructor(reason: string, line: number | undefined, field?: string, file?: string) {
    super(reason, line, field, file, 'measurement log: ');
  }
}

/** The TPM (or tpm2-tools) is missing, unreachable or refused a command. */
export class TpmError extends ThfcError {
  readonly code = 'ERR_TPM';
  readonly exitCode: number = EXIT.IO;
}
