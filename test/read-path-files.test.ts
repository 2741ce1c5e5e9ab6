import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const SCRIPT = join(ROOT, 'scripts', 'read-path-files.mjs');
const canMount = existsSync('/dev/fuse') && process.getuid?.() === 0;

/**
 * Runs the script, which serves a FUSE mount in its own process: libfuse holds SIGTERM there, so a script that
 * overruns is killed with SIGKILL, and a mount it leaves is detached (never a test that blocks for ever).
 */
function run(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') {
        for (const dir of readdirSync(tmpdir()).filter((d) => d.startsWith('thfc-read-path-'))) {
          spawnSync('fusermount', ['-u', '-z', join(tmpdir(), dir, 'mnt')], { stdio: 'ignore' });
        }
      }
      resolve({ status, stdout, stderr });
    });
  });
}

describe.skipIf(!canMount)('npm run read-path (the files one read crosses)', () => {
  it('names the layers a cold miss and a warm hit run, and --check-cold fails above its limit', async () => {
    const r = await run('--json', '--check-cold', '1');
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^read-path: a cold miss crosses \d+ files \(limit 1\)$/m);
    const report = JSON.parse(r.stdout) as Record<'cold' | 'firstUse' | 'warm' | 'sealed', Record<string, number>>;
    const cold = Object.keys(report.cold);
    // A cold miss goes from the FUSE callback down to the HTTP mirror and back into the disk cache.
    expect(cold).toContain('packages/blockfs/src/fuse-adapter.ts');
    expect(cold).toContain('packages/blockfs/src/image-reader.ts');
    expect(cold).toContain('packages/store/src/sources/http-source.ts');
    // A cached block never reaches a mirror, and crosses fewer files than the miss.
    for (const hit of [report.firstUse, report.warm, report.sealed]) {
      const files = Object.keys(hit);
      expect(files).toContain('packages/blockfs/src/image-reader.ts');
      expect(files).not.toContain('packages/store/src/sources/http-source.ts');
      expect(files.length).toBeLessThan(cold.length);
    }
    // A warm hit is answered by the hot index alone: no layer of the tree below it runs.
    const warm = Object.keys(report.warm);
    expect(warm).toContain('packages/blockfs/src/sources/hot-blocks.ts');
    expect(warm).not.toContain('packages/blockfs/src/sources/cached-reader.ts');
  }, 150_000);
});
