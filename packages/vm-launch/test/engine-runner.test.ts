import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLayout } from '../src/boot-plan.js';
import { requireTool, runStep, runXen, waitForVboxPowerOff, which } from '../src/engine-runner.js';
import { EngineMissingError } from '../src/errors.js';
import type { VmSpec } from '../src/vm-spec.js';
import { script, tempDir, testIo } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());
const never = new AbortController().signal;

describe('engine runner', () => {
  it('finds tools on PATH, and says which is missing', async () => {
    expect(await which('sh', { PATH: '/usr/bin:/bin' })).toMatch(/\/sh$/);
    expect(await which('xl', { PATH: dir })).toBeUndefined();
    await expect(requireTool('xl', { PATH: dir }, 'no Xen here')).rejects.toThrow(EngineMissingError);
    await expect(requireTool('xl', { PATH: dir }, 'no Xen here')).rejects.toThrow(/xl not found: no Xen here/);
  });

  it('runs a step and captures its output and failure', async () => {
    const ok = await runStep({ program: 'sh', args: ['-c', 'echo hi'] }, { signal: never, console: 'capture' });
    expect(ok).toMatchObject({ code: 0, stdout: 'hi\n', aborted: false });
    const bad = await runStep(
      { program: 'sh', args: ['-c', 'echo why >&2; exit 4'] },
      { signal: never, console: 'capture' },
    );
    expect(bad).toMatchObject({ code: 4, stdout: 'why\n' });
    const slow = await runStep(
      { program: 'sleep', args: ['30'] },
      { signal: never, console: 'capture', timeoutMs: 100 },
    );
    expect(slow.aborted).toBe(true);
  });

  it('waits for a VirtualBox VM to power off (a fake VBoxManage that is running twice, then off)', async () => {
    const state = join(dir, 'polls');
    await script(
      join(dir, 'VBoxManage'),
      `n=$(cat ${state} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${state}
if [ $n -lt 3 ]; then echo 'VMState="running"'; else echo 'VMState="poweroff"'; fi`,
    );
    expect(await waitForVboxPowerOff('vm', never, { PATH: `${dir}:${process.env.PATH}` })).toBe('powered-off');
  }, 15_000);
});

describe('runXen', () => {
  it('writes the xl config beside the run, relays the console, destroys the domain afterwards', async () => {
    const bin = join(dir, 'xen-bin');
    await mkdir(bin);
    const log = join(dir, 'xl.log');
    await script(join(bin, 'xl'), `echo "$*" >> ${log}; [ "$1" = create ] && cat "$3"; exit 0`);
    const layout = runLayout(
      dir,
      { kind: 'file', source: 'file', location: '/img/d.img', name: 'd', diskName: 'd.img' },
      dir,
      {},
      new Date(0),
    );
    const vm: VmSpec = {
      name: 'thfc-d',
      drive: { path: layout.overlay, format: 'qcow2', bus: 'virtio', snapshot: false },
      accel: 'kvm',
      memMiB: 128,
      cpus: 1,
      display: { kind: 'serial' },
      net: 'none',
    };
    const io = testIo({ env: { PATH: `${bin}:${process.env.PATH}` } });
    expect(await runXen(vm, layout, true, io)).toBe('powered-off');
    expect(io.out()).toContain(`target=${layout.overlay}`);
    expect((await readFile(log, 'utf8')).trim().split('\n')).toEqual([`create -c ${dir}/thfc-d.cfg`, 'destroy thfc-d']);
  });
});
