import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MeasurementLog } from '../src/measurement-log.js';
import { runReplay } from '../src/replay.js';
import { runAttest, tempDir } from './cli-helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

describe('replay', () => {
  it('recomputes the values the log was extended to, per PCR and bank', async () => {
    const a = new MeasurementLog({}, { pcr: 23 });
    const b = new MeasurementLog({}, { pcr: 11 });
    for (const log of [a, b]) {
      void log.measureIndex(`sha256:${'ab'.repeat(32)}`, 'debian', '0123456789abcdef');
      void log.measureBlock(`sha256:${'ab'.repeat(32)}`, 'cd'.repeat(20));
    }
    void a.measureBlock(`sha256:${'ab'.repeat(32)}`, 'ef'.repeat(20));
    const file = join(dir, 'log');
    await writeFile(file, b.text() + a.text());
    const r = await runReplay({ log: file });
    expect(r).toEqual({
      entries: 5,
      indexes: 2,
      blocks: 3,
      pcrs: [
        { pcr: 11, ...b.pcrValues() },
        { pcr: 23, ...a.pcrValues() },
      ],
    });
    const cli = await runAttest(['replay', file]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain(`PCR 23 sha256 ${a.pcrValues().sha256}`);
    expect(cli.stdout).toContain('5 entries: 2 indexes, 3 blocks');
  });

  it('a malformed log is refused with its line (exit 4); a missing one with exit 3', async () => {
    const file = join(dir, 'log');
    await writeFile(file, `23 ${'0'.repeat(40)} thfc-index sha256:${'ab'.repeat(32)} debian -\n`);
    const r = await runAttest(['replay', file]);
    expect([r.code, r.stderr.trim()]).toEqual([
      4,
      `thfc-attest: ${file}: line 1 (digest): template digest does not match its data`,
    ]);
    expect((await runAttest(['replay', join(dir, 'none')])).code).toBe(3);
  });
});
