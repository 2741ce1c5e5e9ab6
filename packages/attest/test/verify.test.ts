import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Swtpm } from '@thfc/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeasurementLog } from '../src/measurement-log.js';
import { Tpm2Tools } from '../src/tpm.js';
import { TpmExtender } from '../src/tpm-extender.js';
import { parseNonce, runVerify } from '../src/verify.js';
import { runAttest, tempDir } from './cli-helpers.js';
import { indexFixture } from './index-fixture.js';

/**
 * The attestation chain against a real software TPM: a log extended into
 * swtpm's PCR 23, an AK, a quote with a nonce, and `thfc-attest verify`
 * accepting the honest log and refusing forged ones.
 */
let swtpm: Swtpm;
let dir: string;
let cleanup: () => Promise<void>;
const NONCE = '5eed0123456789abcdef';
const debian = indexFixture('debian', 6, 1);
const tools = indexFixture('tools', 3, 2);
const f = (name: string) => join(dir, name);

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  swtpm = await Swtpm.start();
  await writeFile(f('debian.idx'), debian.bytes);
  await writeFile(f('tools.idx'), tools.bytes);
  const ak = await runAttest(['ak', '--dir', f('ak'), '--tcti', swtpm.tcti]);
  expect(ak.code, ak.stderr).toBe(0);
  // What a measuring daemon does: both indexes, then blocks as readers first use them.
  const extender = new TpmExtender({ tpm: new Tpm2Tools({ tcti: swtpm.tcti }) });
  await extender.open(23);
  const log = new MeasurementLog({ extender }, { pcr: 23 });
  void log.measureIndex(debian.digest, 'debian', '34750f98bd59fcfc');
  void log.measureIndex(tools.digest, 'tools', undefined);
  const uses: [typeof debian, number][] = [
    [debian, 3],
    [tools, 0],
    [debian, 0],
    [debian, 5],
  ];
  for (const [image, i] of uses) void log.measureBlock(image.digest, image.ids[i] as string);
  await log.settled();
  await writeFile(f('log'), log.text());
  const q = await runAttest([
    'quote',
    '--ak',
    f('ak/ak.ctx'),
    '--nonce',
    NONCE,
    '--out',
    f('quote.json'),
    '--tcti',
    swtpm.tcti,
  ]);
  expect(q.code, q.stderr).toBe(0);
  expect(q.stdout).toMatch(/quoted PCR 23 \(sha1\+sha256\) into/);
}, 60_000);

afterAll(async () => {
  await swtpm?.stop();
  await cleanup?.();
});

const verify = (log: string, extra: string[] = []) =>
  runAttest([
    'verify',
    '--quote',
    f('quote.json'),
    '--log',
    log,
    '--ak',
    f('ak/ak.pub.pem'),
    '--nonce',
    NONCE,
    '--expect',
    f('debian.idx'),
    f('tools.idx'),
    ...extra,
  ]);

async function forged(edit: (lines: string[]) => string[]): Promise<string> {
  const lines = (await readFile(f('log'), 'utf8')).trimEnd().split('\n');
  const path = f(`forged-${Math.random().toString(16).slice(2)}`);
  await writeFile(path, `${edit(lines).join('\n')}\n`);
  return path;
}

describe('thfc-attest verify with a swtpm quote', () => {
  it('accepts the honest log', async () => {
    const r = await verify(f('log'));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`index debian ${debian.digest} key 34750f98bd59fcfc`);
    expect(r.stdout).toContain('PCR 23 (sha1+sha256): 6 entries quoted, 4 blocks');
    expect(r.stdout).toMatch(/^ok: /m);
  });

  it('refuses a forged log: one entry changed, removed or reordered', async () => {
    const other = new MeasurementLog({}, { pcr: 23 });
    void other.measureBlock(debian.digest, debian.ids[1] as string);
    const cases = [
      await forged((ls) => [...ls.slice(0, 5), other.text().trimEnd()]),
      await forged((ls) => [...ls.slice(0, 2), ...ls.slice(3)]),
      await forged((ls) => [ls[1], ls[0], ...ls.slice(2)] as string[]),
    ];
    for (const log of cases) {
      const r = await verify(log);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stdout).toMatch(/FAILED: the log does not replay to the quoted PCR 23/);
    }
  });

  it('refuses when an index is not expected, with the wrong nonce, or with another AK', async () => {
    const r1 = await runAttest([
      'verify',
      '--quote',
      f('quote.json'),
      '--log',
      f('log'),
      '--ak',
      f('ak/ak.pub.pem'),
      '--nonce',
      NONCE,
      '--expect',
      f('debian.idx'),
    ]);
    expect(r1.code).toBe(1);
    expect(r1.stdout).toMatch(/FAILED: log line 2: index tools sha256:[0-9a-f]{64} is not one of the expected indexes/);
    expect(r1.stdout).toMatch(/^index tools sha256:[0-9a-f]{64} key - UNEXPECTED$/m);
    const r2 = await runAttest([
      'verify',
      '--quote',
      f('quote.json'),
      '--log',
      f('log'),
      '--ak',
      f('ak/ak.pub.pem'),
      '--nonce',
      'beef',
      '--expect',
      f('debian.idx'),
      f('tools.idx'),
    ]);
    expect(r2.code).toBe(1);
    expect(r2.stdout).toMatch(/FAILED: the quote does not verify with the AK/);
    const other = await runAttest(['ak', '--dir', f('ak2'), '--tcti', swtpm.tcti]);
    expect(other.code, other.stderr).toBe(0);
    const r3 = await runAttest([
      'verify',
      '--quote',
      f('quote.json'),
      '--log',
      f('log'),
      '--ak',
      f('ak2/ak.pub.pem'),
      '--nonce',
      NONCE,
      '--expect',
      f('debian.idx'),
      f('tools.idx'),
    ]);
    expect(r3.code).toBe(1);
    expect(r3.stdout).toMatch(/FAILED: the quote does not verify with the AK/);
  });

  it('runVerify reports in JSON terms; bad inputs are errors, not verdicts', async () => {
    const r = await runVerify({
      quote: f('quote.json'),
      log: f('log'),
      expect: [f('debian.idx'), f('tools.idx')],
      akPublicKey: f('ak/ak.pub.pem'),
      nonce: NONCE,
    });
    expect(r).toMatchObject({ ok: true, pcr: 23, quotedEntries: 6, unquotedEntries: 0, blocks: 4 });
    expect(() => parseNonce('abc')).toThrow(/2 to 64 hex digits/);
    const bad = await runAttest([
      'verify',
      '--quote',
      f('log'),
      '--log',
      f('log'),
      '--ak',
      f('ak/ak.pub.pem'),
      '--nonce',
      NONCE,
      '--expect',
      f('debian.idx'),
    ]);
    expect([bad.code, bad.stderr]).toEqual([4, expect.stringMatching(/not a quote file/)]);
  });
});
