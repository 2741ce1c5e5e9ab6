import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readFile, rename, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROBE_DISK_BYTES, PROBE_GUEST_REVISION, PROBE_OK, PROBE_STEPS, probeBootSector } from './kvm-probe-guest.js';
import { type QemuExit, type QemuTools, qemuVersion, runQemu } from './qemu.js';
import { kvmFailureLine, probeArgs } from './qemu-args.js';

/**
 * Does KVM really run guests here? An openable /dev/kvm is not proof: nested
 * or paravirtual KVMs (kvm_pvm) accept the ioctls and then fail inside the
 * guest with "KVM internal error … emulation failure". So, as the original's
 * qemu-knoppix.sh chose for itself, boot a tiny guest under KVM and look.
 * The answer is cached per host kernel and qemu version (it cannot change
 * without one of them changing), so the probe costs once.
 */

/** Disk-backed and shared by every user of the machine, like the block cache in /var/tmp/blocks. */
export const DEFAULT_STATE_DIR = '/var/tmp/thfc-vm';
export const PROBE_CACHE_FILE = 'kvm-probe.json';
/**
 * qemu starts in ~0.2 s and the probe guest runs in microseconds under KVM
 * (~0.1 s under TCG); ten seconds leaves a 50× margin for a loaded machine.
 * A KVM that spins instead of failing (a stock bzImage does on kvm_pvm) is
 * cut off here and counted as not working.
 */
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;
export const DEFAULT_KVM_DEVICE = '/dev/kvm';

export interface ProbeResult {
  readonly works: boolean;
  /** One line a user can act on. */
  readonly reason: string;
  /** Host kernel, qemu version and probe revision the answer holds for. */
  readonly key: string;
  readonly probedAt: string;
  /** True when the answer came from the cache file. */
  readonly cached: boolean;
  /** What the probe guest printed (its progress words). */
  readonly output?: string | undefined;
}

export function probeKey(hostKernel: string, qemuVersionLine: string): string {
  return `${hostKernel} | ${qemuVersionLine} | probe r${PROBE_GUEST_REVISION}`;
}

/** Reads a probe run: " OK" from the guest means KVM ran it all; anything else says how far it got and why it stopped. */
export function interpretProbe(exit: QemuExit, timeoutMs: number): { works: boolean; reason: string } {
  const words = exit.stdout.replace(/^.*?:/s, '').trim().split(/\s+/).filter(Boolean);
  if (exit.stdout.includes(PROBE_OK))
    return { works: true, reason: `the probe guest ran under KVM (${words.join(' ')})` };
  const reached = words.filter((w) => (PROBE_STEPS as readonly string[]).includes(w));
  const why =
    kvmFailureLine(exit.stderr) ??
    (exit.stoppedBy === 'timeout'
      ? `the probe guest did not finish within ${timeoutMs / 1000} s`
      : (exit.stderr.trim().split('\n').pop() ??
        `qemu exited with ${exit.signal ? `signal ${exit.signal}` : `status ${exit.code}`}`));
  return {
    works: false,
    reason: `${why}${reached.length ? ` (the probe guest got through: ${reached.join(' ')})` : ' (before the probe guest started)'}`,
  };
}

export interface KvmProbeComponents {
  readonly tools: QemuTools;
  /** os.release(): KVM's behaviour belongs to the host kernel. */
  readonly hostKernel: string;
  readonly now: () => Date;
  readonly kvmDevice?: string | undefined;
}

export interface KvmProbeOptions {
  readonly stateDir?: string | undefined;
  readonly timeoutMs?: number | undefined;
}

export class KvmProbe {
  private readonly stateDir: string;
  private readonly timeoutMs: number;
  private readonly kvmDevice: string;

  constructor(
    private readonly components: KvmProbeComponents,
    options: KvmProbeOptions = {},
  ) {
    this.stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    this.kvmDevice = components.kvmDevice ?? DEFAULT_KVM_DEVICE;
  }

  get cacheFile(): string {
    return join(this.stateDir, PROBE_CACHE_FILE);
  }

  /** The cached answer when it holds for this kernel and qemu, else a fresh probe (cached). `refresh` probes again. */
  async check(signal: AbortSignal, o: { refresh?: boolean } = {}): Promise<ProbeResult> {
    const now = this.components.now().toISOString();
    try {
      await access(this.kvmDevice, constants.R_OK | constants.W_OK);
    } catch (e) {
      // Not cached: loading the module or joining the kvm group changes this without a new kernel or qemu.
      const code = (e as NodeJS.ErrnoException).code;
      const reason =
        code === 'ENOENT'
          ? `${this.kvmDevice} does not exist (no KVM module loaded, or no hardware virtualisation)`
          : `cannot open ${this.kvmDevice} for reading and writing (${code}; join the kvm group?)`;
      return { works: false, reason, key: '', probedAt: now, cached: false };
    }
    const key = probeKey(this.components.hostKernel, await qemuVersion(this.components.tools, signal));
    if (!o.refresh) {
      const cached = await this.readCache(key);
      if (cached) return cached;
    }
    const image = await this.probeImage();
    const exit = await runQemu(this.components.tools, probeArgs('kvm', image), {
      signal,
      stdin: 'ignore',
      stdout: 'pipe',
      timeoutMs: this.timeoutMs,
      // qemu stops the guest and waits after "KVM internal error": nothing more will come.
      stopWhen: ({ stdout, stderr }) => stdout.includes(PROBE_OK) || kvmFailureLine(stderr) !== undefined,
    });
    signal.throwIfAborted();
    const { works, reason } = interpretProbe(exit, this.timeoutMs);
    const result: ProbeResult = { works, reason, key, probedAt: now, cached: false, output: exit.stdout.trim() };
    await this.writeCache(result);
    return result;
  }

  /** KVM passed the probe but failed a real guest: remember that, so the next boot goes straight to TCG. */
  async recordRunTimeFailure(previous: ProbeResult, why: string): Promise<void> {
    if (!previous.key) return;
    await this.writeCache({
      ...previous,
      works: false,
      reason: `KVM failed a guest at run time: ${why}`,
      probedAt: this.components.now().toISOString(),
      cached: false,
    });
  }

  private async readCache(key: string): Promise<ProbeResult | undefined> {
    try {
      const c = JSON.parse(await readFile(this.cacheFile, 'utf8')) as Partial<ProbeResult>;
      if (c.key !== key || typeof c.works !== 'boolean' || typeof c.reason !== 'string') return undefined;
      return { works: c.works, reason: c.reason, key, probedAt: String(c.probedAt), cached: true, output: c.output };
    } catch {
      return undefined; // missing or unreadable: probe again
    }
  }

  private async writeCache(result: ProbeResult): Promise<void> {
    await mkdir(this.stateDir, { recursive: true });
    const tmp = `${this.cacheFile}.tmp-${randomBytes(4).toString('hex')}`;
    const { cached: _cached, ...stored } = result;
    await writeFile(tmp, `${JSON.stringify(stored, null, 2)}\n`);
    await rename(tmp, this.cacheFile).catch(async (e) => {
      await unlink(tmp).catch(() => {});
      throw e;
    });
  }

  /** The probe disk: the boot sector padded to 1 MiB (sparse), written once per revision and only ever read. */
  private async probeImage(): Promise<string> {
    const path = join(this.stateDir, `kvm-probe-r${PROBE_GUEST_REVISION}.img`);
    await mkdir(this.stateDir, { recursive: true });
    const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, probeBootSector());
    await truncate(tmp, PROBE_DISK_BYTES);
    await rename(tmp, path);
    return path;
  }
}
