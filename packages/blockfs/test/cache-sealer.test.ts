import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { blockPath } from '@thfc/format';
import { MemoryLogger } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeSeal } from '../src/cache/cache-seal.js';
import { CacheSealer, DAEMONS_DIR, parseRegistration } from '../src/cache/cache-sealer.js';
import { thisProcess } from '../src/cache/process-identity.js';
import { identityOf } from '../src/io/file-identity.js';
import { tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const X = 'a1'.repeat(20);
const Y = 'b2'.repeat(20);
const Z = 'c3'.repeat(20);

async function cache() {
  const t = await tempDir('thfc-sealer-');
  cleanups.push(t.cleanup);
  const dir = t.dir;
  const syncs: string[] = [];
  const logger = new MemoryLogger();
  const sealer = (log = logger) =>
    new CacheSealer({ logger: log, syncFs: async (d) => void syncs.push(d) }, { dir, lockWaitMs: 2000 });
  /** Writes an entry file and returns its identity. */
  const entry = async (id: string, bytes = id) => {
    const path = join(dir, blockPath(id));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
    return identityOf(statSync(path, { bigint: true }));
  };
  const registrations = async () => readdir(join(dir, DAEMONS_DIR)).catch(() => [] as string[]);
  const sealed = async () => decodeSeal(await readFile(join(dir, 'seal')));
  return { dir, logger, syncs, sealer, entry, registrations, sealed };
}

describe('CacheSealer', () => {
  it('open() registers the daemon and, with no seal, trusts nothing (one log line)', async () => {
    const c = await cache();
    expect((await c.sealer().open()).size).toBe(0);
    const regs = await c.registrations();
    expect(regs).toHaveLength(1);
    expect(parseRegistration(regs[0] as string)).toMatchObject({ pid: process.pid, bootId: thisProcess().bootId });
    expect(c.logger.lines).toEqual([expect.stringMatching(/no seal: every entry is checked on first use/)]);
  });

  it('seal() keeps entries whose file still has the identity verified, syncs, writes, deregisters; open() trusts them', async () => {
    const c = await cache();
    const s = c.sealer();
    await s.open();
    const x = await c.entry(X);
    const y = await c.entry(Y);
    const z = await c.entry(Z);
    await c.entry(Y, 'changed since it was verified');
    expect(
      await s.seal(
        new Map([
          [X, x],
          [Y, y],
          ['d4'.repeat(20), z],
        ]),
      ),
    ).toBe(1);
    expect(c.syncs).toEqual([c.dir]);
    expect([...(await c.sealed())]).toEqual([[X, x]]);
    expect(await c.registrations()).toEqual([]);
    const next = c.sealer();
    expect([...(await next.open())]).toEqual([[X, x]]);
    expect(c.logger.lines.at(-1)).toMatch(/the seal vouches for 1 entries/);
  });

  it('leave() after open(): the registration goes, the seal stays as it was, nothing is synced', async () => {
    const c = await cache();
    const first = c.sealer();
    await first.open();
    const x = await c.entry(X);
    expect(await first.seal(new Map([[X, x]]))).toBe(1);
    const before = await readFile(join(c.dir, 'seal'));
    const syncs = c.syncs.length;
    const s = c.sealer();
    expect([...(await s.open())]).toEqual([[X, x]]);
    expect(await c.registrations()).toHaveLength(1);
    await s.leave();
    expect(await c.registrations()).toEqual([]);
    expect(await readFile(join(c.dir, 'seal'))).toEqual(before);
    expect(c.syncs).toHaveLength(syncs);
  });

  it('several daemons: each seal merges with the one there, keeping what still matches', async () => {
    const c = await cache();
    const a = c.sealer();
    const b = c.sealer();
    await a.open();
    await b.open();
    expect(await c.registrations()).toHaveLength(2);
    const x = await c.entry(X);
    const y = await c.entry(Y);
    expect(await a.seal([[X, x]])).toBe(1);
    expect(await b.seal([[Y, y]])).toBe(2);
    expect([...(await c.sealed())].sort()).toEqual([
      [X, x],
      [Y, y],
    ]);
    await c.entry(X, 'replaced since'); // now the next seal drops it
    const d = c.sealer();
    await d.open();
    expect(await d.seal([])).toBe(1);
    expect([...(await c.sealed())]).toEqual([[Y, y]]);
  });

  it('a daemon gone without a clean stop (this boot) is cleared with a log line; the seal stays trusted', async () => {
    const c = await cache();
    const first = c.sealer();
    await first.open();
    const x = await c.entry(X);
    await first.seal([[X, x]]);
    const me = thisProcess();
    await writeFile(join(c.dir, DAEMONS_DIR, `${me.bootId}.${me.pid}.1.0badf00d`), ''); // a pid now someone else's
    const s = c.sealer();
    expect([...(await s.open())]).toEqual([[X, x]]);
    expect(c.logger.lines.join('\n')).toMatch(
      new RegExp(`httpstorged pid ${me.pid} stopped without a clean stop \\(killed or crashed\\)`),
    );
    expect(await c.registrations()).toHaveLength(1); // only the new daemon's
  });

  it('a daemon registered when the machine went down voids the seal: removed, nothing trusted, one fault line', async () => {
    const c = await cache();
    const first = c.sealer();
    await first.open();
    await first.seal([[X, await c.entry(X)]]);
    await writeFile(join(c.dir, DAEMONS_DIR, `00000000-0000-0000-0000-000000000000.4242.99.0badf00d`), '');
    const s = c.sealer();
    expect((await s.open()).size).toBe(0);
    expect(existsSync(join(c.dir, 'seal'))).toBe(false);
    expect(c.logger.lines.filter((l) => l.startsWith('FAULT'))).toEqual([
      expect.stringMatching(/the machine went down while httpstorged \(pid 4242\) was using it: its seal is void/),
    ]);
    expect(await c.registrations()).toHaveLength(1);
  });

  it('a damaged seal trusts nothing (one fault line naming it); the next clean stop writes a good one', async () => {
    const c = await cache();
    const first = c.sealer();
    await first.open();
    const x = await c.entry(X);
    await first.seal([[X, x]]);
    const text = await readFile(join(c.dir, 'seal'), 'latin1');
    await writeFile(join(c.dir, 'seal'), text.slice(0, text.length - 10), 'latin1'); // truncated
    const s = c.sealer();
    expect((await s.open()).size).toBe(0);
    expect(c.logger.lines.filter((l) => l.startsWith('FAULT'))).toEqual([
      expect.stringMatching(/damaged seal \(.*seal: truncated.*\): every entry is checked on first use/),
    ]);
    const y = await c.entry(Y);
    expect(await s.seal([[Y, y]])).toBe(1);
    expect([...(await c.sealed())]).toEqual([[Y, y]]);
  });

  it('a seal that cannot be made durable is not written; the daemon is deregistered all the same', async () => {
    const c = await cache();
    const s = new CacheSealer(
      {
        syncFs: async () => {
          throw new Error('EIO');
        },
      },
      { dir: c.dir },
    );
    await s.open();
    await expect(s.seal([[X, await c.entry(X)]])).rejects.toThrow('EIO');
    expect(existsSync(join(c.dir, 'seal'))).toBe(false);
    expect(await c.registrations()).toEqual([]);
  });

  it('a cache it cannot write still mounts: open() trusts nothing, says why, and does not throw', async () => {
    const c = await cache();
    await writeFile(join(c.dir, 'a-file'), '');
    const logger = new MemoryLogger();
    const s = new CacheSealer({ logger }, { dir: join(c.dir, 'a-file', 'cache') }); // ENOTDIR, as EACCES would be
    expect((await s.open()).size).toBe(0);
    expect(logger.lines).toEqual([expect.stringMatching(/seal not read \(.*ENOTDIR.*\): every entry is checked/)]);
    await expect(s.seal([])).rejects.toThrow();
  });

  it('users() lists the daemons running and clears those gone', async () => {
    const c = await cache();
    const live = c.sealer();
    await live.open();
    const me = thisProcess();
    await writeFile(join(c.dir, DAEMONS_DIR, `${me.bootId}.${me.pid}.1.0badf00d`), '');
    const users = await c.sealer().users();
    expect(users.live).toEqual([expect.objectContaining({ pid: process.pid, startTime: me.startTime })]);
    expect(users.gone).toEqual([expect.objectContaining({ pid: process.pid, startTime: '1' })]);
    expect(await c.registrations()).toHaveLength(1);
  });
});
