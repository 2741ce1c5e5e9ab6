import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const MIRROR_CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const BLOCKFS_MAIN = new URL('../../blockfs/dist/index.js', import.meta.url).href;

const dir = mkdtempSync(join(tmpdir(), 'thfc-no-fuse-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
/** Preloaded into the child: on exit, says whether fuse-native was ever loaded (CommonJS cache). */
const hook = join(dir, 'hook.cjs');
writeFileSync(
  hook,
  "process.on('exit', () => process.stderr.write('\\nFUSE-NATIVE-LOADED ' + Object.keys(require.cache).some((k) => k.includes('/fuse-native/')) + '\\n'));\n",
);

/** Runs node with the hook and `args`; true when fuse-native was loaded. */
function fuseLoaded(args: string[]): boolean {
  const r = spawnSync(process.execPath, ['--require', hook, ...args], { encoding: 'utf8', timeout: 30_000 });
  const m = /FUSE-NATIVE-LOADED (true|false)/.exec(r.stderr);
  if (!m) throw new Error(`no answer from the hook: ${r.stderr}`);
  return m[1] === 'true';
}

// The mirror's docker image (docker/Dockerfile.mirror) has no libfuse2, and fuse-native's binding needs it
// as soon as it is loaded: thfc-mirror takes its remote side from @thfc/store, never @thfc/blockfs.
describe('thfc-mirror without FUSE', () => {
  it('never loads fuse-native, for any subcommand', () => {
    for (const sub of ['serve', 'sync', 'dns', 'proxy']) expect(fuseLoaded([MIRROR_CLI, sub, '--help'])).toBe(false);
  });

  it('the hook sees fuse-native when it is loaded (so the test above can fail)', () => {
    // @thfc/blockfs loads fuse-native only at its first mount, so importing its main entry no longer does.
    expect(fuseLoaded(['--input-type=module', '-e', `await import(${JSON.stringify(BLOCKFS_MAIN)})`])).toBe(false);
    const fuseNative = createRequire(new URL('../../blockfs/package.json', import.meta.url)).resolve('fuse-native');
    expect(fuseLoaded(['-e', `require(${JSON.stringify(fuseNative)})`])).toBe(true);
  });
});
