import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { interpretProbe, KvmProbe, PROBE_CACHE_FILE, probeKey } from '../src/kvm-probe.js';
import type { QemuExit } from '../src/qemu.js';
import { script, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

const exit = (o: Partial<QemuExit>): QemuExit => ({
  code: 0,
  signal: null,
  stoppedBy: undefined,
  stdout: '',
  stderr: '',
  ...o,
});

describe('interpretProbe', () => {
  it('" OK" from the guest: KVM works', () => {
    const r = interpretProbe(exit({ stdout: 'thfc-kvm-probe: real long int3 cx16 xsave OK\n', code: 1 }), 1000);
    expect(r).toEqual({ works: true, reason: 'the probe guest ran under KVM (real long int3 cx16 xsave OK)' });
  });
  it('an emulation failure says where the guest stopped', () => {
    const r = interpretProbe(
      exit({
        stdout: 'thfc-kvm-probe: real long',
        stderr: 'KVM internal error. Suberror: 1\nextra data[0]: 0x1\nemulation failure\n',
        stoppedBy: 'stop-when',
      }),
      1000,
    );
    expect(r.works).toBe(false);
    expect(r.reason).toBe('KVM internal error. Suberror: 1 (the probe guest got through: real long)');
  });
  it('qemu refusing to start, and a guest that spins', () => {
    expect(
      interpretProbe(exit({ code: 134, stderr: 'qemu: error: failed to set MSR 0x10a to 0x69\n' }), 1000).reason,
    ).toBe('qemu: error: failed to set MSR 0x10a to 0x69 (before the probe guest started)');
    expect(interpretProbe(exit({ stoppedBy: 'timeout', stdout: 'thfc-kvm-probe: real' }), 5000).reason).toBe(
      'the probe guest did not finish within 5 s (the probe guest got through: real)',
    );
  });
});

/** A fake qemu-system: prints a version, records each guest run in COUNT, then behaves as `guest` says. */
async function fakeQemu(guest: string): Promise<{ system: string; img: string; runs: () => Promise<number> }> {
  const count = join(dir, 'count');
  await writeFile(count, '');
  const system = await script(
    join(dir, 'qemu-system-fake'),
    `if [ "$1" = --version ]; then echo "QEMU emulator version 9.9.9"; exit 0; fi\necho run >> ${count}\n${guest}`,
  );
  return {
    system,
    img: 'qemu-img',
    runs: async () => (await readFile(count, 'utf8')).split('\n').filter(Boolean).length,
  };
}

describe('KvmProbe', () => {
  it('no /dev/kvm: no, without running qemu, and not cached', async () => {
    const tools = await fakeQemu('exit 0');
    const p = new KvmProbe(
      { tools, hostKernel: 'k1', now: () => new Date(0), kvmDevice: join(dir, 'no-kvm') },
      { stateDir: dir },
    );
    const r = await p.check(new AbortController().signal);
    expect(r.works).toBe(false);
    expect(r.reason).toMatch(/does not exist/);
    expect(await tools.runs()).toBe(0);
    await expect(readFile(join(dir, PROBE_CACHE_FILE))).rejects.toThrow();
  });

  it('probes once per host kernel and qemu version, then answers from the cache', async () => {
    const kvm = join(dir, 'kvm');
    await writeFile(kvm, '');
    const tools = await fakeQemu(
      `printf 'thfc-kvm-probe: real long'; echo 'KVM internal error. Suberror: 1' >&2; exec sleep 30`,
    );
    const probe = (hostKernel: string) =>
      new KvmProbe({ tools, hostKernel, now: () => new Date(0), kvmDevice: kvm }, { stateDir: dir, timeoutMs: 10_000 });
    const first = await probe('k1').check(new AbortController().signal);
    expect(first).toMatchObject({ works: false, cached: false, key: probeKey('k1', 'QEMU emulator version 9.9.9') });
    expect(first.reason).toMatch(/KVM internal error.*got through: real long/);
    const again = await probe('k1').check(new AbortController().signal);
    expect(again).toMatchObject({ works: false, cached: true, reason: first.reason });
    expect(await tools.runs()).toBe(1);
    await probe('k2').check(new AbortController().signal); // a new host kernel: probe again
    expect(await tools.runs()).toBe(2);
    await probe('k2').check(new AbortController().signal, { refresh: true });
    expect(await tools.runs()).toBe(3);
  }, 30_000);

  it('a guest that never finishes is cut off at the timeout', async () => {
    const kvm = join(dir, 'kvm');
    await writeFile(kvm, '');
    const tools = await fakeQemu('exec sleep 30');
    const p = new KvmProbe(
      { tools, hostKernel: 'k', now: () => new Date(0), kvmDevice: kvm },
      { stateDir: dir, timeoutMs: 300 },
    );
    const started = Date.now();
    const r = await p.check(new AbortController().signal);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(r.reason).toMatch(/did not finish within 0.3 s/);
  });

  it('a run-time failure overrides a cached yes', async () => {
    const kvm = join(dir, 'kvm');
    await writeFile(kvm, '');
    const tools = await fakeQemu(`echo 'thfc-kvm-probe: real long int3 cx16 xsave OK'; exit 1`);
    const p = new KvmProbe({ tools, hostKernel: 'k', now: () => new Date(0), kvmDevice: kvm }, { stateDir: dir });
    const yes = await p.check(new AbortController().signal);
    expect(yes.works).toBe(true);
    await p.recordRunTimeFailure(yes, 'KVM internal error. Suberror: 1');
    const now = await p.check(new AbortController().signal);
    expect(now).toMatchObject({ works: false, cached: true });
    expect(now.reason).toMatch(/failed a guest at run time: KVM internal error/);
  });
});
