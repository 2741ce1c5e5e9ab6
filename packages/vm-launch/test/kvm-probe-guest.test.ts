import { execFileSync } from 'node:child_process';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { interpretProbe } from '../src/kvm-probe.js';
import { PROBE_DISK_BYTES, PROBE_OK, probeBootSector } from '../src/kvm-probe-guest.js';
import { DEFAULT_QEMU_TOOLS, runQemu } from '../src/qemu.js';
import { probeArgs } from '../src/qemu-args.js';
import { tempDir } from './helpers.js';

const SOURCE = fileURLToPath(new URL('../src/kvm-probe-guest.S', import.meta.url));
const has = (tool: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`]);
    return true;
  } catch {
    return false;
  }
};

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());

describe('the KVM probe guest', () => {
  it('is a boot sector', () => {
    const s = probeBootSector();
    expect(s.length).toBe(512);
    expect([s[510], s[511]]).toEqual([0x55, 0xaa]);
  });

  it.runIf(has('as') && has('ld'))('is exactly what kvm-probe-guest.S assembles to', async () => {
    execFileSync('as', ['--64', '-o', join(dir, 'p.o'), SOURCE]);
    execFileSync('ld', [
      '-m',
      'elf_x86_64',
      '-Ttext',
      '0x7c00',
      '--oformat',
      'binary',
      '-e',
      '_start',
      '-o',
      join(dir, 'p.bin'),
      join(dir, 'p.o'),
    ]);
    expect(Buffer.from(probeBootSector()).equals(await readFile(join(dir, 'p.bin')))).toBe(true);
  });

  it('runs to the end under TCG with every step (the probe itself works; only KVM decides)', async () => {
    const img = join(dir, 'probe.img');
    await writeFile(img, probeBootSector());
    await truncate(img, PROBE_DISK_BYTES);
    // -cpu max under TCG offers cx16 and xsave, so every step of the guest runs.
    const exit = await runQemu(DEFAULT_QEMU_TOOLS, probeArgs('tcg', img), {
      signal: new AbortController().signal,
      stdin: 'ignore',
      stdout: 'pipe',
      timeoutMs: 20_000,
      stopWhen: ({ stdout }) => stdout.includes(PROBE_OK),
    });
    expect(exit.stdout).toContain('thfc-kvm-probe: real long int3 cx16 xsave OK');
    expect(interpretProbe(exit, 20_000).works).toBe(true);
  }, 30_000);
});
