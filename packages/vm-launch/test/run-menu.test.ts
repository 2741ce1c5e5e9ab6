import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MENU_TITLE, runMenu } from '../src/run-menu.js';
import { tempDir, testIo } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let catalog: string;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  catalog = join(dir, 'catalog.json');
  await writeFile(
    catalog,
    JSON.stringify({
      format: 'thfc-catalog',
      version: 1,
      images: ['alpha', 'beta', 'gamma'].map((name) => ({ name, index: `${name}.idx`, description: `the ${name} OS` })),
    }),
  );
});
afterEach(() => cleanup());

const boot = { dryRun: true, accel: 'tcg', stateDir: '/s' } as const;

describe('runMenu on a terminal', () => {
  it('draws the menu in raw mode, boots the entry chosen with arrows and Enter, and gives the terminal back', async () => {
    const stdin = new PassThrough();
    const raw: boolean[] = [];
    const io = testIo({ cwd: dir, stdin, tty: { raw } });
    const done = runMenu({ catalog: dir, boot, accelLabel: 'TCG forced' }, io);
    await new Promise((r) => setTimeout(r, 50));
    expect(io.out()).toContain(MENU_TITLE);
    expect(io.out()).toContain('\x1b[7m> 1  alpha');
    stdin.write('\x1b[B');
    stdin.write('\x1b[B');
    stdin.write('\r');
    const r = await done;
    expect(r.chosen?.name).toBe('gamma');
    expect(raw).toEqual([true, false]);
    expect(stdin.isPaused()).toBe(true);
    expect(io.out()).toContain('\x1b[7m> 3  gamma');
    expect(io.out()).toMatch(/httpstorged \/s\/run-DRYRUN\/mnt \S*\/gamma\.idx/);
    expect(io.err()).toContain('booting gamma (the gamma OS)');
  });

  it('a number and Enter; q quits without booting', async () => {
    const pick = new PassThrough();
    const io = testIo({ cwd: dir, stdin: pick, tty: { raw: [] } });
    const p = runMenu({ catalog: dir, boot, accelLabel: 'auto' }, io);
    pick.write('2\r');
    expect((await p).chosen?.name).toBe('beta');
    const quit = new PassThrough();
    const io2 = testIo({ cwd: dir, stdin: quit, tty: { raw: [] } });
    const q = runMenu({ catalog: dir, boot, accelLabel: 'auto' }, io2);
    quit.write('q');
    expect((await q).chosen).toBeUndefined();
    expect(io2.err()).toContain('nothing chosen');
    expect(io2.out()).not.toContain('qemu-system');
  });

  it('Ctrl-C (an abort) at the menu restores the terminal', async () => {
    const raw: boolean[] = [];
    const ac = new AbortController();
    const io = testIo({ cwd: dir, stdin: new PassThrough(), tty: { raw }, signal: ac.signal });
    const p = runMenu({ catalog: dir, boot, accelLabel: 'auto' }, io);
    setTimeout(() => ac.abort(), 20);
    await expect(p).rejects.toThrow(/interrupted/);
    expect(raw).toEqual([true, false]);
  });
});

describe('runMenu without a terminal', () => {
  it('prints the list and reads a number or a name from stdin', async () => {
    const io = testIo({ cwd: dir, stdin: Readable.from(['beta\n']) });
    const r = await runMenu({ catalog: catalog, boot, accelLabel: 'auto' }, io);
    expect(r.chosen?.name).toBe('beta');
    expect(io.out()).toMatch(/^1 {2}alpha {2}the alpha OS/m);
    const io3 = testIo({ cwd: dir, stdin: Readable.from(['3\n']) });
    expect((await runMenu({ catalog, boot, accelLabel: 'auto' }, io3)).chosen?.name).toBe('gamma');
  });

  it('end of input chooses nothing; a wrong answer is a usage error', async () => {
    expect((await runMenu({ catalog, boot, accelLabel: 'auto' }, testIo({ cwd: dir }))).chosen).toBeUndefined();
    await expect(
      runMenu({ catalog, boot, accelLabel: 'auto' }, testIo({ cwd: dir, stdin: Readable.from(['9\n']) })),
    ).rejects.toThrow(/no entry "9"/);
  });
});
