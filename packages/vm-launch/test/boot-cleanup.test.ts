import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BootReport } from '../src/boot.js';
import { type BootRun, cleanUpRun } from '../src/boot-cleanup.js';
import { runLayout } from '../src/boot-plan.js';
import type { Target } from '../src/boot-target.js';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

/** A run of a disk file with its overlay made, in DIR/run-1. */
async function madeRun(keepOverlay: boolean): Promise<{ run: BootRun; report: BootReport; said: string[] }> {
  const runDir = join(dir, 'run-1');
  await mkdir(join(dir, 'overlays'), { recursive: true });
  await mkdir(runDir);
  const target: Target = {
    kind: 'file',
    name: 'disk',
    location: join(dir, 'disk.img'),
    source: 'file',
    diskName: 'disk.img',
  };
  const layout = runLayout(runDir, target, dir, { keepOverlay }, new Date('2026-01-02T03:04:05Z'));
  await writeFile(layout.overlay, 'qcow2');
  await writeFile(join(runDir, 'console.log'), 'GUEST-UP\n');
  const run: BootRun = {
    runDir,
    layout,
    mount: undefined,
    overlayMade: true,
    recordPath: undefined,
    recordBefore: undefined,
  };
  const report: BootReport = {
    image: target.location,
    name: 'disk',
    source: 'file',
    engine: 'qemu',
    disk: target.location,
    seconds: {},
    cleanup: { clean: true, problems: [] },
  };
  return { run, report, said: [] };
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe('cleanUpRun', () => {
  it('removes the overlay and the run directory: a clean run', async () => {
    const { run, report, said } = await madeRun(false);
    await cleanUpRun(run, false, report, (l) => said.push(l));
    expect(await exists(run.runDir)).toBe(false);
    expect(report.cleanup).toEqual({ clean: true, problems: [] });
    expect(report.overlayKept).toBeUndefined();
    expect(said).toEqual([]);
  });

  it('--keep-overlay: the overlay stays under overlays/ and is named, with its backing file', async () => {
    const { run, report, said } = await madeRun(true);
    await cleanUpRun(run, true, report, (l) => said.push(l));
    expect(await exists(run.layout.overlay)).toBe(true);
    expect(await exists(run.runDir)).toBe(false);
    expect(report.overlayKept).toBe(run.layout.overlay);
    expect(said).toEqual([`overlay kept: ${run.layout.overlay} (backing file ${report.disk})`]);
  });
});
