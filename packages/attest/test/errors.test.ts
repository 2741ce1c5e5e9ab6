import { EXIT, exitCodeOf, LineFormatError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { MeasurementLogFormatError, TpmError } from '../src/errors.js';

describe('attest errors', () => {
  it('a bad log is a line-format error (bad data); a TPM failure is the environment', () => {
    const e = new MeasurementLogFormatError('digest mismatch', 7);
    expect(e).toBeInstanceOf(LineFormatError);
    expect([e.code, e.message, exitCodeOf(e)]).toEqual([
      'ERR_LOG_FORMAT',
      'measurement log: line 7: digest mismatch',
      EXIT.DATA,
    ]);
    expect(new MeasurementLogFormatError('empty', undefined, undefined, 'ima.log').message).toBe('ima.log: empty');
    const t = new TpmError('tpm2_quote not found');
    expect([t.code, exitCodeOf(t)]).toEqual(['ERR_TPM', EXIT.IO]);
  });
});
