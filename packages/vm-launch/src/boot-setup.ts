import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { type CatalogBoot, InputError, UsageError } from '@thfc/format';
import { type AccelChoice, chooseAccel } from './accel.js';
import type { BootOptions } from './boot.js';
import { resolveTarget, type Target } from './boot-target.js';
import { DEFAULT_BOOT_TIMEOUT_SECONDS } from './boot-watch.js';
import { DEFAULT_STATE_DIR, KvmProbe, type ProbeResult } from './kvm-probe.js';
import type { Engine } from './launch-plan.js';
import { localPath } from './locations.js';
import { type ProfileOptions, profileArgs, profileFlags } from './mount-options.js';
import { chooseVia, type ViaChoice, type ViaRequest } from './via.js';
import type { VmIo } from './vm-io.js';
import {
  chooseDisplay,
  DEFAULT_CPUS,
  DEFAULT_DISK_BUS,
  DEFAULT_MEM_MIB,
  type Display,
  MIN_MEM_MIB,
  type VmSpec,
  vmName,
} from './vm-spec.js';

/**
 * What a boot will do, decided once from its options, the target and this
 * host before anything is created: `--dry-run` prints it, a run carries it
 * out. Every contradiction and missing file is refused here.
 */
export interface BootSetup {
  readonly o: BootOptions;
  readonly engine: Engine;
  /** Absolute: the overlay names the mounted disk as its backing file, which qemu resolves from the overlay's directory. */
  readonly stateDir: string;
  readonly target: Target;
  /** Where the kernel, initrd and command line come from (none with VirtualBox: it boots the disk's own loader). */
  readonly kernelLoc: string | undefined;
  readonly initrdLoc: string | undefined;
  readonly append: string | undefined;
  /** httpstorged's arguments: the ones passed through, then the boot-profile flags. */
  readonly mountArgs: readonly string[];
  /** How the index reaches qemu; undefined for a disk file. */
  readonly via: ViaChoice | undefined;
  readonly memMiB: number;
  readonly display: Display;
  readonly bootTimeoutMs: number;
  readonly defaults: CatalogBoot;
  readonly probe: KvmProbe;
}

export async function setUpBoot(o: BootOptions, io: VmIo): Promise<BootSetup> {
  const engine: Engine = o.engine ?? 'qemu';
  const stateDir = resolve(io.cwd, o.stateDir ?? DEFAULT_STATE_DIR);
  const target = await resolveTarget({ ...o, pool: o.mountArgs?.includes('--pool') }, io);
  const defaults: CatalogBoot = target.entry?.boot ?? {};
  refuseContradictions(o, engine);
  const kernelLoc = engine === 'virtualbox' ? undefined : (o.kernel ?? target.entry?.kernelUrl);
  const initrdLoc = engine === 'virtualbox' ? undefined : (o.initrd ?? target.entry?.initrdUrl);
  const append = engine === 'virtualbox' ? undefined : (o.append ?? defaults.append);
  if (append !== undefined && kernelLoc === undefined)
    throw new UsageError('--append needs --kernel: a kernel command line only applies to direct kernel boot');
  for (const loc of [kernelLoc, initrdLoc]) {
    const p = loc === undefined ? undefined : localPath(loc);
    if (p !== undefined && !(await readable(resolve(io.cwd, p))))
      throw new InputError(`${p}: no such file (or not readable)`);
  }
  await checkProfileOptions(o.profile, target, io.cwd);
  const mountArgs = [...(o.mountArgs ?? []), ...profileArgs(o.profile, io.cwd)];
  const via = target.kind === 'index' ? await viaFor(o.via ?? 'auto', engine, io) : undefined;
  const memMiB = o.mem ?? defaults.mem ?? DEFAULT_MEM_MIB;
  if (memMiB < MIN_MEM_MIB) throw new UsageError(`--mem ${memMiB}: a guest needs at least ${MIN_MEM_MIB} MiB`);
  const probe = new KvmProbe(
    { tools: io.tools, hostKernel: io.hostKernel, now: io.now, kvmDevice: io.kvmDevice },
    { stateDir },
  );
  const display = chooseDisplay({
    vnc: o.vnc,
    serial: o.serial,
    graphical: !!(io.env.DISPLAY || io.env.WAYLAND_DISPLAY),
  });
  const bootTimeoutMs = (o.bootTimeoutSeconds ?? DEFAULT_BOOT_TIMEOUT_SECONDS) * 1000;
  return {
    o,
    engine,
    stateDir,
    target,
    kernelLoc,
    initrdLoc,
    append,
    mountArgs,
    via,
    memMiB,
    display,
    bootTimeoutMs,
    defaults,
    probe,
  };
}

function refuseContradictions(o: BootOptions, engine: Engine): void {
  if (o.snapshot && o.keepOverlay)
    throw new UsageError('--snapshot throws writes away; --keep-overlay keeps them: choose one');
  if (o.snapshot && engine !== 'qemu')
    throw new UsageError(`--snapshot is qemu's; with ${engine} the guest's writes are dropped after the run anyway`);
  if (engine === 'virtualbox' && (o.kernel !== undefined || o.initrd !== undefined))
    throw new UsageError(
      "VirtualBox has no direct kernel boot: drop --kernel/--initrd (it boots the disk's own loader)",
    );
}

/** The accelerator: as asked, or with auto under qemu, what the (cached) KVM probe says. */
export async function accelFor(s: BootSetup, io: VmIo): Promise<{ choice: AccelChoice; probed?: ProbeResult }> {
  const request = s.o.accel ?? 'auto';
  if (s.engine !== 'qemu' || request !== 'auto') return { choice: chooseAccel(request, undefined) };
  const probed = await s.probe.check(io.signal, { refresh: !!s.o.refreshProbe });
  return { choice: chooseAccel('auto', probed), probed };
}

/** The guest booted off DISK: the boot's choices, the catalog entry's defaults, then thfc-vm's. */
export function specFor(
  s: BootSetup,
  disk: string,
  accel: AccelChoice,
  files: { kernel?: string | undefined; initrd?: string | undefined },
  runDir: string,
): VmSpec {
  const { o, defaults } = s;
  return {
    name: vmName(s.target.name),
    drive: {
      path: disk,
      format: o.snapshot || s.engine === 'virtualbox' ? 'raw' : 'qcow2',
      bus: o.diskBus ?? defaults.diskBus ?? DEFAULT_DISK_BUS,
      snapshot: !!o.snapshot,
    },
    accel: accel.accel,
    memMiB: s.memMiB,
    cpus: o.cpus ?? defaults.cpus ?? DEFAULT_CPUS,
    kernel: files.kernel,
    initrd: files.initrd,
    append: s.append,
    display: s.display,
    net: o.net ?? defaults.net ?? 'none',
    consoleLog: s.bootTimeoutMs && s.display.kind === 'serial' ? join(runDir, 'console.log') : undefined,
  };
}

const readable = (path: string, mode: number = constants.R_OK) =>
  access(path, mode).then(
    () => true,
    () => false,
  );

/**
 * --via for an index: NBD needs qemu (the other engines name the disk as a
 * file); auto looks at this host (a usable /dev/fuse, root).
 */
async function viaFor(request: ViaRequest, engine: Engine, io: VmIo): Promise<ViaChoice> {
  if (engine !== 'qemu') {
    if (request === 'nbd') throw new UsageError(`--via nbd needs qemu: ${engine} reads the image as a file`);
    return { via: 'fuse', reason: `fuse (${engine} reads the image as a file)` };
  }
  const fuse = await readable(io.fuseDevice ?? '/dev/fuse', constants.R_OK | constants.W_OK);
  return chooseVia(request, { fuse, root: io.root ?? false });
}

/**
 * Profile options only mean something for a mount this run makes: a disk
 * file (for instance MOUNTPOINT/NAME of an httpstorged someone else started)
 * is read by qemu directly, so nothing here could record or replay it. The
 * files named are checked now rather than after a whole boot.
 */
async function checkProfileOptions(p: ProfileOptions | undefined, target: Target, cwd: string): Promise<void> {
  const flags = profileFlags(p);
  if (!p || flags.length === 0) return;
  if (target.kind === 'file') {
    const onMount = await stat(join(dirname(target.location), '.thfc', 'stats.json')).then(
      () => true,
      () => false,
    );
    throw new UsageError(
      `${flags.join(', ')}: ${target.location} is ${onMount ? 'an already-mounted' : 'a'} disk file, not an index, and thfc-vm only records and replays boot profiles on mounts it makes. ` +
        `Boot the index instead (thfc-vm boot http://…/${target.name}.idx ${flags.join(' ')} …)${onMount ? `, or give ${flags.join(', ')} to the httpstorged that mounted it` : ''}.`,
    );
  }
  if (p.record !== undefined) {
    const dir = dirname(resolve(cwd, p.record));
    const st = await stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) throw new InputError(`--record-profile ${p.record}: no such directory ${dir}`);
    await access(dir, constants.W_OK).catch(() => {
      throw new InputError(`--record-profile ${p.record}: cannot write in ${dir}`);
    });
  }
  if (typeof p.prefetch === 'string') {
    const local = localPath(p.prefetch);
    if (local !== undefined && !(await stat(resolve(cwd, local)).catch(() => undefined))?.isFile())
      throw new InputError(`--prefetch ${p.prefetch}: no such file`);
  }
}
