import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { node, ROOT, run, tempDir } from './support/processes.js';

/**
 * The man pages: `npm run man` (scripts/man.mjs) writes them from each
 * command's --help, they are committed, installed through each package's
 * "man" field, and `man -l` renders them.
 */
const PACKAGES = ['packer', 'blockfs', 'mirror', 'attest', 'vm-launch'];
const COMMANDS = ['thfc-pack', 'httpstorged', 'thfc-mirror', 'thfc-attest', 'thfc-vm', 'httpfuse-kvm', 'httpfuse-qemu'];
let fresh: string;
let cleanup: () => Promise<void>;

/** Every page a package.json installs, as a path from the repository root. */
async function installed(): Promise<string[]> {
  const out: string[] = [];
  for (const p of PACKAGES) {
    const pkg = JSON.parse(await readFile(join(ROOT, 'packages', p, 'package.json'), 'utf8'));
    expect(pkg.files, `${p}: "files" ships man/`).toContain('man');
    for (const m of pkg.man ?? []) out.push(join('packages', p, m));
  }
  return out;
}

beforeAll(async () => {
  ({ dir: fresh, cleanup } = await tempDir('thfc-man-'));
  const r = await node(join(ROOT, 'scripts/man.mjs'), ['--out', fresh], { timeoutMs: 120_000 });
  expect(r.code, r.stderr).toBe(0);
}, 150_000);

afterAll(async () => cleanup?.());

describe('man pages', () => {
  it('every command has a page in its package\'s "man" field, and the committed page is what npm run man writes', async () => {
    const pages = await installed();
    expect(pages.map((p) => p.split('/').at(-1)).sort()).toEqual(COMMANDS.map((c) => `${c}.1`).sort());
    expect((await readdir(fresh)).sort()).toEqual(COMMANDS.map((c) => `${c}.1`).sort());
    for (const page of pages) {
      const name = page.split('/').at(-1) as string;
      expect(await readFile(join(ROOT, page), 'utf8'), `${page} is stale: run npm run build && npm run man`).toBe(
        await readFile(join(fresh, name), 'utf8'),
      );
    }
  });

  it('man -l renders each page with no groff warning, options and subcommands included', async (ctx) => {
    const which = await run('sh', ['-c', 'command -v man && command -v groff']);
    if (which.code !== 0) return ctx.skip('man or groff is not installed (scripts/setup.sh installs man-db)');
    for (const page of await installed()) {
      const warnings = await run('groff', ['-ww', '-man', '-Tutf8', '-z', join(ROOT, page)]);
      expect(warnings.stderr, page).toBe('');
      const r = await run('man', ['-l', join(ROOT, page)], { env: { MANPAGER: 'cat', MANWIDTH: '100' } });
      expect(r.code, `${page}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/^NAME\n/m);
      expect(r.stdout).toMatch(/^SYNOPSIS\n/m);
      expect(r.stdout).toMatch(/^OPTIONS\n/m);
    }
    const pack = await run('man', ['-l', join(ROOT, 'packages/packer/man/thfc-pack.1')], {
      env: { MANPAGER: 'cat', MANWIDTH: '100' },
    });
    expect(pack.stdout).toMatch(/thfc-pack +- Publish raw disk images/);
    expect(pack.stdout).toMatch(/^ {3}thfc-pack pack$/m);
    expect(pack.stdout).toMatch(/^ {3}thfc-pack profile add$/m);
    expect(pack.stdout).toContain('-s, --store <dir>');
    const storaged = await run('man', ['-l', join(ROOT, 'packages/blockfs/man/httpstorged.1')], {
      env: { MANPAGER: 'cat', MANWIDTH: '100' },
    });
    expect(storaged.stdout).toMatch(/^ {3}httpstorged cache prune$/m);
    expect(storaged.stdout).toContain('INDEX-URL…');
  });
});
