import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MeasurementLogFormatError } from '../src/errors.js';
import {
  blockField,
  formatLogLine,
  type LogEntry,
  parseLog,
  templateDigests,
  templateText,
} from '../src/measurement-event.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const index: LogEntry = {
  pcr: 23,
  event: { template: 'thfc-index', index: DIGEST, image: 'debian-12', keyId: '34750f98bd59fcfc' },
};
const block: LogEntry = {
  pcr: 23,
  event: { template: 'thfc-block', index: DIGEST, block: blockField('b76bc4cb62e9fd50162bfd061c5c81a5c144c47d') },
};

function errorOf(text: string): MeasurementLogFormatError {
  try {
    parseLog(text, 'log');
  } catch (e) {
    if (e instanceof MeasurementLogFormatError) return e;
    throw e;
  }
  throw new Error('parsed');
}

describe('log lines', () => {
  it('are PCR, SHA-1 template digest, template name, data: like ascii_runtime_measurements', () => {
    const line = formatLogLine(index);
    const sha1 = createHash('sha1').update(`thfc-index ${DIGEST} debian-12 34750f98bd59fcfc`).digest('hex');
    expect(line).toBe(`23 ${sha1} thfc-index ${DIGEST} debian-12 34750f98bd59fcfc\n`);
    expect(formatLogLine(block)).toMatch(
      /^23 [0-9a-f]{40} thfc-block sha256:(ab)+ sha1:b76bc4cb62e9fd50162bfd061c5c81a5c144c47d\n$/,
    );
  });

  it('template digests in both banks hash the text after the digest column', () => {
    const d = templateDigests(block.event);
    expect(d.sha256.toString('hex')).toBe(createHash('sha256').update(templateText(block.event)).digest('hex'));
    expect(blockField('ab'.repeat(32))).toBe(`sha256:${'ab'.repeat(32)}`);
  });

  it('parse(format(x)) = x, with line numbers; trailing padding of the status file is ignored', () => {
    const text = formatLogLine(index) + formatLogLine(block);
    expect(parseLog(`${text}${' '.repeat(5000)}\n`)).toEqual([
      { ...index, line: 1 },
      { ...block, line: 2 },
    ]);
    expect(parseLog('')).toEqual([]);
  });

  it.each([
    ['24 X thfc-index', 'pcr', /not a PCR 0-23/],
    ['023 X thfc-index', 'pcr', /not a PCR/],
    ['23 abc thfc-index', 'digest', /40-hex-digit/],
    [`23 ${'0'.repeat(40)} ima-ng sha1:00 /bin/sh`, 'template', /unknown template "ima-ng"/],
    [`23 ${'0'.repeat(40)} thfc-index ${DIGEST} debian`, 'data', /INDEX-DIGEST IMAGE-NAME KEY-ID/],
    [`23 ${'0'.repeat(40)} thfc-block ${DIGEST} sha1:xyz`, 'data', /bad block/],
    [`23 ${'0'.repeat(40)} thfc-index sha256:00 d -`, 'data', /bad index digest/],
  ])('refuses %s (%s)', (line, field, pattern) => {
    const e = errorOf(`${formatLogLine(index)}${line}\n`);
    expect([e.line, e.field]).toEqual([2, field]);
    expect(e.message).toMatch(pattern);
    expect(e.message).toMatch(/^log: line 2/);
  });

  it('refuses a line whose data was changed but not its digest', () => {
    const forged = formatLogLine(index).replace('debian-12', 'debian-13');
    expect(errorOf(forged).message).toMatch(/line 1 \(digest\): template digest does not match its data/);
  });
});
