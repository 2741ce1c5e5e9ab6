import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseLog, Tpm2Tools } from '@thfc/attest';
import { decodeIndex } from '@thfc/format';
import { Swtpm } from '@thfc/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
// A plain ES module (JSDoc-typed) shared with bench/: the bootable test guest, built once from Debian packages.
import { buildGuestImage, guestKernelArgs } from './support/guest-image.mjs';
import { makeImage } from './support/images.js';
import { isMounted, readRange, TestMount } from './support/mounts.js';
import { BIN, node, ROOT, type Run, sha256, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';

/**
 * Issue 7's chain, end to end, with every piece real: keygen → pack → sign →
 * serve (HTTP on loopback) → mount with a trust store → read the disk from a
 * child process (the stand-in for booting it) → measure (software log and a
 * swtpm PCR) → quote → verify. Plus the refusals a trust store makes, each
 * naming its rule, through the httpstorged CLI.
 */
const ATTEST = join(ROOT, 'packages/attest/dist/cli.js');
const VM = join(ROOT, 'packages/vm-launch/dist/cli.js');
const NONCE = '7e57c4a1b0de0123';

let work: string;
let cleanupWork: () => Promise<void>;
let image: string;
let store: string;
let trustDir: string;
let server: StaticServer;
let swtpm: Swtpm;
const mounts: TestMount[] = [];
let n = 0;

const pack = (args: string[]) => node(BIN.pack, args, { timeoutMs: 60_000 });
const attest = (args: string[]) => node(ATTEST, args, { timeoutMs: 60_000 });
const ok = (r: Run) => expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);

async function mount(args: string[]): Promise<{ mnt: string; mount: TestMount; result: Run }> {
  const mnt = join(work, `mnt${++n}`);
  await mkdir(mnt);
  const { mount, result } = await TestMount.start(mnt, join(work, `log${n}.txt`), [
    ...args,
    '--cache',
    join(work, `cache${n}`),
  ]);
  mounts.push(mount);
  return { mnt, mount, result };
}

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-chain-'));
  // keygen
  ok(await pack(['keygen', join(work, 'release.key')]));
  // pack (text, zeros and incompressible data: 4 + 2 + 2 MiB) and sign
  image = join(work, 'chain-disk.img');
  await makeImage(image, [
    ['text', 4],
    ['zero', 2],
    ['random', 2],
  ]);
  store = join(work, 'store');
  ok(await pack(['pack', image, '--store', store]));
  ok(await pack(['sign', join(store, 'chain-disk.idx'), '--key', join(work, 'release.key')]));
  // the client's trust store: the release key, for chain-* images only
  trustDir = join(work, 'trust.d');
  await mkdir(trustDir);
  ok(await pack(['key', 'add', join(trustDir, 'acme.trust'), join(work, 'release.key.pub'), '--scope', 'chain-*']));
  // serve
  server = await new StaticServer(store).start();
  swtpm = await Swtpm.start();
}, 120_000);

afterEach(async () => {
  for (const m of mounts.splice(0)) await m.stop();
});

afterAll(async () => {
  await server?.kill();
  await swtpm?.stop();
  await cleanupWork?.();
});

describe('the trust chain', () => {
  it('keygen → pack → sign → serve → mount with the trust store → read → measure → quote → verify', async () => {
    ok(await attest(['ak', '--dir', join(work, 'ak'), '--tcti', swtpm.tcti]));
    const indexUrl = `${server.url}chain-disk.idx`;
    const {
      mnt,
      mount: m,
      result,
    } = await mount([
      indexUrl,
      '--trust-store',
      trustDir,
      '--measure-blocks',
      '--tpm',
      '--tpm-tcti',
      swtpm.tcti,
      '--readahead',
      '0',
    ]);
    ok(result);
    const disk = join(mnt, 'chain-disk');
    const index = decodeIndex(await readFile(join(store, 'chain-disk.idx')));
    const keyId = index.signatures[0]?.keyId as string;

    // Three reads inside block 0 (different pages, so three requests reach the daemon): measured once.
    for (const at of [0, 100_000, 200_000]) expect((await readRange(disk, at, 4096)).ok).toBe(true);
    const measurements = async () => {
      const r = await node(BIN.httpstorged, ['measurements', mnt], { timeoutMs: 10_000 });
      ok(r);
      return r.stdout;
    };
    let entries = parseLog(await measurements());
    expect(entries.map((e) => e.event)).toEqual([
      { template: 'thfc-index', index: index.digest, image: 'chain-disk', keyId },
      { template: 'thfc-block', index: index.digest, block: `sha1:${index.index.ref(0)?.id}` },
    ]);
    expect(((await m.stats()).images[0]?.reads as number) >= 2).toBe(true);

    // Read the whole disk twice (the boot stand-in): every distinct non-zero block is measured exactly once.
    expect(await sha256(disk)).toBe(await sha256(image));
    expect(await sha256(disk)).toBe(await sha256(image));
    const logText = await measurements();
    entries = parseLog(logText);
    const blocks = entries.flatMap((e) => (e.event.template === 'thfc-block' ? [e.event.block.slice(5)] : []));
    expect(new Set(blocks).size).toBe(blocks.length);
    expect(new Set(blocks)).toEqual(new Set(index.index.uniqueRefs().keys()));
    expect(blocks.length).toBe(index.index.counts().unique);
    expect(entries.every((e) => e.pcr === 23)).toBe(true);

    // The log replays to what the TPM's PCR 23 holds, in both banks.
    const logFile = join(work, 'measurements.log');
    await writeFile(logFile, logText);
    const replay = await attest(['replay', logFile, '--json']);
    ok(replay);
    const pcr = JSON.parse(replay.stdout).pcrs[0];
    const tpm = await new Tpm2Tools({ tcti: swtpm.tcti }).pcrRead(23, ['sha1', 'sha256']);
    expect({ sha1: tpm.sha1?.[23], sha256: tpm.sha256?.[23] }).toEqual({ sha1: pcr.sha1, sha256: pcr.sha256 });

    // Quote with the verifier's nonce, then verify against the published index.
    const quote = join(work, 'quote.json');
    ok(
      await attest(['quote', '--ak', join(work, 'ak/ak.ctx'), '--nonce', NONCE, '--out', quote, '--tcti', swtpm.tcti]),
    );
    const verify = (log: string, expect: string[] = [join(store, 'chain-disk.idx')]) =>
      attest([
        'verify',
        '--quote',
        quote,
        '--log',
        log,
        '--ak',
        join(work, 'ak/ak.pub.pem'),
        '--nonce',
        NONCE,
        '--expect',
        ...expect,
      ]);
    const good = await verify(logFile);
    ok(good);
    expect(good.stdout).toContain(`index chain-disk ${index.digest} key ${keyId}`);
    expect(good.stdout).toContain(`${entries.length} entries quoted, ${blocks.length} blocks`);

    // A forged log (two block measurements swapped) fails, and so does an index the verifier did not expect.
    const lines = logText.trimEnd().split('\n');
    [lines[2], lines[3]] = [lines[3] as string, lines[2] as string];
    const forged = join(work, 'forged.log');
    await writeFile(forged, `${lines.join('\n')}\n`);
    const bad = await verify(forged);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/FAILED: the log does not replay to the quoted PCR 23/);
    ok(await pack(['pack', image, '--store', join(work, 'other'), '--name', 'other-disk']));
    const unexpected = await verify(logFile, [join(work, 'other', 'other-disk.idx')]);
    expect(unexpected.code).toBe(1);
    expect(unexpected.stdout).toMatch(/is not one of the expected indexes/);
  }, 240_000);

  it('--tpm with no TPM fails with a clear message; without --tpm the software log works', async () => {
    const url = `${server.url}chain-disk.idx`;
    const noTpm = await mount([url, '--trust-store', trustDir, '--tpm', '--tpm-tcti', 'swtpm:host=127.0.0.1,port=1']);
    expect(noTpm.result.code).toBe(5);
    expect(noTpm.result.stderr).toMatch(
      /no TPM reachable .*run without --tpm: the software measurement log still works/,
    );
    expect(await isMounted(noTpm.mnt)).toBe(false);
    const soft = await mount([url, '--trust-store', trustDir]);
    ok(soft.result);
    const r = await node(BIN.httpstorged, ['measurements', soft.mnt], { timeoutMs: 10_000 });
    ok(r);
    expect(parseLog(r.stdout).map((e) => e.event.template)).toEqual(['thfc-index']); // no --measure-blocks
  }, 60_000);
});

describe('the trust chain with a boot', () => {
  // thfc-vm (packages/vm-launch) boots a real Debian kernel and busybox guest (test/support/guest-image.mjs,
  // built once from Debian packages) off the measured mount, under TCG; the guest prints a marker and powers off.
  it.skipIf(!existsSync(VM))(
    'keygen → pack → sign → serve → mount with the trust store → boot → measure → quote → verify',
    async () => {
      const guest = await buildGuestImage();
      ok(await pack(['pack', guest.disk, '--store', store, '--name', 'chain-guest']));
      const idx = join(store, 'chain-guest.idx');
      ok(await pack(['sign', idx, '--key', join(work, 'release.key')]));
      ok(await attest(['ak', '--dir', join(work, 'ak-boot'), '--tcti', swtpm.tcti]));
      // PCR 16 (the debug PCR, also zero at start): PCR 23 of this swtpm already holds the first test's log.
      const { mnt, result } = await mount([
        `${server.url}chain-guest.idx`,
        '--trust-store',
        trustDir,
        '--measure-blocks',
        '--tpm',
        '--tpm-tcti',
        swtpm.tcti,
        '--tpm-pcr',
        '16',
      ]);
      ok(result);
      const boot = await node(
        VM,
        ['boot', join(mnt, 'chain-guest'), ...guestKernelArgs(guest), '--snapshot', '--serial', '--accel', 'tcg'],
        { timeoutMs: 300_000 },
      );
      ok(boot);
      expect(boot.stdout + boot.stderr).toContain(guest.markerLine);
      const log = await node(BIN.httpstorged, ['measurements', mnt], { timeoutMs: 10_000 });
      ok(log);
      const entries = parseLog(log.stdout);
      const blocks = entries.filter((e) => e.event.template === 'thfc-block').length;
      expect(entries[0]?.event).toMatchObject({ template: 'thfc-index', image: 'chain-guest' });
      expect(blocks).toBeGreaterThan(0); // what the boot read, each block once
      const logFile = join(work, 'boot.log');
      await writeFile(logFile, log.stdout);
      const quote = join(work, 'boot-quote.json');
      ok(
        await attest([
          'quote',
          '--ak',
          join(work, 'ak-boot/ak.ctx'),
          '--pcr',
          '16',
          '--nonce',
          NONCE,
          '--out',
          quote,
          '--tcti',
          swtpm.tcti,
        ]),
      );
      const verified = await attest([
        'verify',
        '--quote',
        quote,
        '--log',
        logFile,
        '--ak',
        join(work, 'ak-boot/ak.pub.pem'),
        '--nonce',
        NONCE,
        '--expect',
        idx,
      ]);
      ok(verified);
      expect(verified.stdout).toContain(`PCR 16 (sha1+sha256): ${entries.length} entries quoted, ${blocks} blocks`);
    },
    600_000,
  );
});

describe('trust-store decisions through httpstorged', () => {
  /** A store of copies of chain-disk.idx, each signed as a case needs, and a mount attempt per case. */
  async function attempt(idx: string, store: string): Promise<Run> {
    const { result } = await mount([idx, '--mirror', join(work, 'store'), '--trust-store', store]);
    return result;
  }

  async function copyIndex(name: string, keys: string[]): Promise<string> {
    const dir = join(work, `case-${name}`);
    await mkdir(dir, { recursive: true });
    const idx = join(dir, 'chain-disk.idx');
    const text = await readFile(join(store, 'chain-disk.idx'), 'utf8');
    await writeFile(idx, text.replace(/^sig .*\n/gm, ''));
    for (const k of keys) ok(await pack(['sign', idx, '--key', k]));
    return idx;
  }

  it('rotation: signed by the old and the new key, it mounts for a client trusting either', async () => {
    const oldKey = join(work, 'release.key');
    const idx = await copyIndex('rotate', [oldKey]);
    ok(await pack(['key', 'rotate', oldKey, join(work, 'next.key'), idx]));
    const onlyNew = join(work, 'only-new.trust');
    ok(await pack(['key', 'add', onlyNew, join(work, 'next.key.pub')]));
    for (const trust of [trustDir, onlyNew]) {
      const r = await attempt(idx, trust);
      ok(r);
    }
  }, 60_000);

  it('revoked, expired, out of scope, unsigned and untrusted are each refused, saying which', async () => {
    const key = join(work, 'release.key');
    const signed = await copyIndex('signed', [key]);
    const unsigned = await copyIndex('unsigned', []);
    const store = async (name: string, args: string[]) => {
      const f = join(work, `${name}.trust`);
      ok(await pack(['key', 'add', f, `${key}.pub`, ...args]));
      return f;
    };
    const expired = await store('expired', ['--expires', '2020-01-01']);
    const scoped = await store('scoped', ['--scope', 'debian-*']);
    const revoked = await store('revoked', []);
    ok(await pack(['key', 'revoke', revoked, `${key}.pub`]));
    ok(await pack(['keygen', join(work, 'stranger.key')]));
    const stranger = join(work, 'stranger.trust');
    ok(await pack(['key', 'add', stranger, join(work, 'stranger.key.pub')]));
    const cases: [string, string, RegExp][] = [
      [signed, revoked, /key [0-9a-f]{16} is revoked \(.*revoked\.trust line 3\)/],
      [signed, expired, /key [0-9a-f]{16} expired on 2020-01-01T00:00:00Z/],
      [signed, scoped, /key [0-9a-f]{16} is out of scope: it may sign only debian-\*, not chain-disk/],
      [unsigned, trustDir, /the index is not signed/],
      [signed, stranger, /signed only by untrusted keys [0-9a-f]{16}/],
    ];
    for (const [idx, trust, pattern] of cases) {
      const r = await attempt(idx, trust);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/^httpstorged: refusing to mount chain-disk \(/);
      expect(r.stderr).toMatch(pattern);
    }
    // The same key in scope and unexpired mounts (accepted, not only refused).
    ok(await attempt(signed, await store('fine', ['--expires', '2999-01-01', '--scope', 'chain-*'])));
  }, 120_000);
});
