import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runGuest } from '../src/guest-run.js';
import { KvmProbe } from '../src/kvm-probe.js';
import type { VmSpec } from '../src/vm-spec.js';
import { script, tempDir, testIo } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

const vm: VmSpec = {
  name: 'thfc-x',
  drive: { path: '/dev/null', format: 'raw', bus: 'virtio', snapshot: false },
  accel: 'kvm',
  memMiB: 64,
  cpus: 1,
  display: { kind: 'serial' },
  net: 'none',
};
const auto = { accel: 'kvm' as const, reason: 'probe', retryWithTcg: true };

async function run(guest: string, choice = auto) {
  const system = await script(join(dir, 'qemu'), guest);
  const io = testIo({ tools: { system, img: 'qemu-img' } });
  const probe = new KvmProbe({ tools: io.tools, hostKernel: 'k', now: () => new Date(0) }, { stateDir: dir });
  let fresh = 0;
  const r = await runGuest(
    vm,
    choice,
    undefined,
    probe,
    io,
    (l) => io.stderr.write(`thfc-vm: ${l}\n`),
    async () => {
      fresh++;
    },
  );
  return { ...r, fresh, err: io.err(), out: io.out() };
}

describe('runGuest', () => {
  it('a KVM failure split across output chunks is still hidden and reported in one line', async () => {
    const r = await run(`case "$*" in *kvm*)
  printf 'qemu-system-x86_64: warning: host lacks pni\\n' >&2; printf 'qemu-system-x86_64:' >&2; sleep 0.2
  printf ' error: failed to set MSR 0x10a to 0x69\\nAssertion failed\\n' >&2; exit 134;; esac; echo guest-ok`);
    expect(r.outcome).toBe('powered-off');
    expect(r.fallback).toBe('qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69');
    expect(r.fresh).toBe(1);
    expect(r.out).toBe('guest-ok\n');
    expect(r.err).toBe(
      'qemu-system-x86_64: warning: host lacks pni\nthfc-vm: KVM failed at run time (qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69); retrying with TCG\n',
    );
  });

  it('a guest failure that is not KVM`s is not retried, and is left for the caller to explain', async () => {
    const r = await run('echo "qemu-system-x86_64: cannot open disk" >&2; exit 1');
    expect(r).toMatchObject({ outcome: 'failed', explained: false, fresh: 0 });
    expect(r.fallback).toBeUndefined();
    expect(r.err).toBe('qemu-system-x86_64: cannot open disk\n');
  });

  it('a forced KVM is not retried; the one line says how to get TCG', async () => {
    const r = await run("echo 'KVM internal error. Suberror: 1' >&2; exec sleep 30", { ...auto, retryWithTcg: false });
    expect(r).toMatchObject({ outcome: 'failed', explained: true, fresh: 0 });
    expect(r.exit.stoppedBy).toBe('stop-when');
    expect(r.err).toMatch(
      /^thfc-vm: KVM failed \(KVM internal error\. Suberror: 1\); --no-kvm runs the guest under TCG\n$/,
    );
  });
});
