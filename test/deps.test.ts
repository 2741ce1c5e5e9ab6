import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { node, ROOT, tempDir } from './support/processes.js';

/**
 * `npm run deps` (scripts/deps.mjs) on this repository and on a staged copy
 * of its packages (package.json and src/ only) into which one violation at
 * a time is written: each must be reported, one line naming file and line,
 * with exit status 1.
 */

const SCRIPT = join(ROOT, 'scripts/deps.mjs');
let copy: { dir: string; cleanup: () => Promise<void> };

beforeEach(async () => {
  copy = await tempDir('thfc-deps-');
  for (const name of await readdir(join(ROOT, 'packages'))) {
    const from = join(ROOT, 'packages', name);
    await cp(join(from, 'package.json'), join(copy.dir, 'packages', name, 'package.json'));
    await cp(join(from, 'src'), join(copy.dir, 'packages', name, 'src'), { recursive: true });
  }
});

afterEach(async () => {
  await copy.cleanup();
});

const deps = (root = copy.dir) => node(SCRIPT, [root], { timeoutMs: 60_000 });

async function edit(path: string, change: (text: string) => string): Promise<void> {
  const file = join(copy.dir, path);
  await writeFile(file, change(await readFile(file, 'utf8')));
}

/** Adds `line` at the top of a source file of the copy. */
const prepend = (path: string, line: string) => edit(path, (text) => `${line}\n${text}`);

async function addDependency(pkg: string, name: string): Promise<void> {
  await edit(`packages/${pkg}/package.json`, (text) => {
    const manifest = JSON.parse(text);
    manifest.dependencies = { ...manifest.dependencies, [name]: '*' };
    return JSON.stringify(manifest, null, 2);
  });
}

describe('npm run deps', () => {
  it('passes on this repository and prints the graph and its layers, format at the root, store right on it', async () => {
    const r = await deps(ROOT);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}format +→ \(none\)$/m);
    expect(r.stdout).toMatch(/^ {2}cli +→ format$/m);
    expect(r.stdout).toMatch(/^ {2}store +→ format$/m);
    // packer, blockfs and mirror sit beside each other over store: neither reader depends on the publisher.
    expect(r.stdout).toMatch(/^ {2}blockfs +→ attest, cli, format, store$/m);
    expect(r.stdout).toMatch(/^ {2}mirror +→ cli, format, store$/m);
    expect(r.stdout).toMatch(/^ {2}vm-launch +→ .*\bstore$/m);
    expect(r.stdout).toMatch(/^layers .*\n {2}0: format\n/m);
  });

  it('an unchanged copy passes too (the staging itself is clean)', async () => {
    expect((await deps()).code).toBe(0);
  });

  it('refuses an import of a package the importer does not declare', async () => {
    await prepend('packages/packer/src/catalog.ts', "import '@thfc/mirror';");
    const r = await deps();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^packages\/packer\/src\/catalog\.ts:1: @thfc\/packer imports @thfc\/mirror, which its package\.json does not list in dependencies$/m,
    );
  });

  it('refuses an undeclared outside package too, and allows node builtins', async () => {
    await prepend('packages/format/src/catalog.ts', "import 'node:fs';\nimport 'fs';\nimport 'left-pad';");
    const r = await deps();
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      'packages/format/src/catalog.ts:3: @thfc/format imports left-pad, which its package.json does not list in dependencies',
      '1 finding',
    ]);
  });

  it("refuses reaching into another package's src/ by a relative path", async () => {
    await prepend('packages/blockfs/src/mount-list.ts', "import { runPack } from '../../packer/src/pack.js';");
    const r = await deps();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^packages\/blockfs\/src\/mount-list\.ts:1: @thfc\/blockfs reaches outside its package by path \("\.\.\/\.\.\/packer\/src\/pack\.js" is packages\/packer\/src\/pack\.js\)$/m,
    );
  });

  it("refuses a declared package's src/ or dist/, or a subpath its exports do not offer", async () => {
    await prepend(
      'packages/mirror/src/cli.ts',
      "import '@thfc/format/dist/errors.js';\nimport type { X } from '@thfc/packer/src/pack.js';\nimport '@thfc/blockfs/mount';",
    );
    const r = await deps();
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toContain(
      `packages/mirror/src/cli.ts:1: @thfc/mirror reaches into @thfc/format's dist/ ("@thfc/format/dist/errors.js")`,
    );
    expect(lines).toContain(
      `packages/mirror/src/cli.ts:2: @thfc/mirror reaches into @thfc/packer's src/ ("@thfc/packer/src/pack.js")`,
    );
    expect(lines).toContain(
      `packages/mirror/src/cli.ts:3: @thfc/mirror imports "@thfc/blockfs/mount", which @thfc/blockfs's "exports" does not offer`,
    );
  });

  it('refuses a package entry that re-exports a whole module, typed or not', async () => {
    await edit(
      'packages/store/src/index.ts',
      (text) => `${text}export * from './logger.js';\nexport type * from './atomic-file.js';\n`,
    );
    const r = await deps();
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.filter((l) => l.includes('re-exports a whole module'))).toEqual([
      expect.stringMatching(
        /^packages\/store\/src\/index\.ts:\d+: @thfc\/store re-exports a whole module \(export \* from '\.\/logger\.js';\); name what it offers$/,
      ),
      expect.stringMatching(
        /^packages\/store\/src\/index\.ts:\d+: @thfc\/store re-exports a whole module \(export type \* from/,
      ),
    ]);
  });

  it('refuses a published package that depends on a private one (the testkit)', async () => {
    await addDependency('mirror', '@thfc/testkit');
    const r = await deps();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^packages\/mirror\/package\.json: @thfc\/mirror depends on @thfc\/testkit, a private \(test-only\) package$/m,
    );
  });

  it('refuses a cycle, declared or imported, and prints no layers then', async () => {
    await addDependency('format', '@thfc/cli');
    let r = await deps();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^cycle: @thfc\/cli → @thfc\/format → @thfc\/cli$/m);
    expect(r.stdout).not.toMatch(/layers/);

    await edit('packages/format/package.json', (text) => text.replace('"@thfc/cli": "*"', '"@thfc/other": "*"'));
    await addDependency('store', '@thfc/packer');
    await prepend('packages/store/src/logger.ts', "export type { X } from '@thfc/packer';");
    r = await deps();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^cycle: @thfc\/packer → @thfc\/store → @thfc\/packer$/m);
    expect(r.stderr).not.toMatch(/@thfc\/format/);
  });
});
