import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MeasurementLogFormatError } from '../src/errors.js';
import { formatLogLine, parseLog } from '../src/measurement-event.js';
import { MeasurementLog } from '../src/measurement-log.js';

/**
 * The log parser under hostile input (a verifier reads logs it did not
 * write): it returns entries whose lines format back to exactly the input
 * lines, or it throws MeasurementLogFormatError, and nothing else.
 */
const SEED = 20261127;

function honest(): string {
  const log = new MeasurementLog();
  void log.measureIndex(`sha256:${'ab'.repeat(32)}`, 'debian-12', '0123456789abcdef');
  void log.measureBlock(`sha256:${'ab'.repeat(32)}`, 'cd'.repeat(20));
  void log.measureBlock(`sha256:${'ab'.repeat(32)}`, 'ef'.repeat(32));
  return log.text();
}

function check(text: string): void {
  let entries: ReturnType<typeof parseLog>;
  try {
    entries = parseLog(text);
  } catch (e) {
    expect(e).toBeInstanceOf(MeasurementLogFormatError);
    return;
  }
  expect(entries.map((e) => formatLogLine(e)).join('')).toBe(
    text.replace(/[ \n]+$/, '') === '' ? '' : `${text.replace(/[ \n]+$/, '')}\n`,
  );
}

describe('parseLog, fuzzed', () => {
  it('random text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => check(s)),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('an honest log with characters changed, cut or spliced', () => {
    const base = honest();
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0x20, max: 0x7e })), { maxLength: 3 }),
        fc.nat(base.length),
        fc.constantFrom(' ', '\n', '0', 'a', ':', 'sha1:', 'thfc-block '),
        (edits, cut, splice) => {
          const chars = [...base];
          for (const [at, c] of edits) chars[at] = String.fromCharCode(c);
          const text = chars.join('');
          check(text);
          check(text.slice(0, cut));
          check(text.slice(0, cut) + splice + text.slice(cut));
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });
});
