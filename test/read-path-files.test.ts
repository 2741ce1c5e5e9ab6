import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const SCRIPT = join(ROOT, 'scripts', 'read-path-files.mjs');
const canMount = existsSync('/dev/fuse') && process.getuid?.() === 0;

function run(...args: string[]) {
  return spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', timeout: 120_000 });
}

describe.skipIf(!canMount)('npm run read-path (the files one read crosses)', () => {
  it('names the layers a cold miss and a warm hit run, and --check-cold fails above its limit', () => {
    const r = run('--json', '--check-cold', '1');
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^read-path: a cold miss crosses \d+ files \(limit 1\)$/m);
    const report = JSON.parse(r.stdout) as Record<'cold' | 'memory' | 'disk', Record<string, number>>;
    const cold = Object.keys(report.cold);
    // A cold miss goes from the FUSE callback down to the HTTP mirror and back into the disk cache.
    expect(cold).toContain('packages/blockfs/src/fuse-adapter.ts');
    expect(cold).toContain('packages/blockfs/src/image-reader.ts');
    expect(cold).toContain('packages/store/src/sources/http-source.ts');
    // A warm hit never reaches a mirror, and crosses fewer files than the miss.
    for (const warm of [report.memory, report.disk]) {
      const files = Object.keys(warm);
      expect(files).toContain('packages/blockfs/src/image-reader.ts');
      expect(files).not.toContain('packages/store/src/sources/http-source.ts');
      expect(files.length).toBeLessThan(cold.length);
    }
  }, 150_000);
});
