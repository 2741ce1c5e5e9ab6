import { constants, type Stats } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { isMounted } from '@thfc/blockfs/mount-point';
import { type CatalogBoot, decodeProfile, InputError, UsageError } from '@thfc/format';
import { type AccelChoice, chooseAccel } from './accel.js';
import { buildPlan, downloadsFor, localFile, runLayout } from './boot-plan.js';
import { resolveTarget, type Target } from './boot-target.js';
import { DEFAULT_BOOT_TIMEOUT_SECONDS, readsBootSector } from './boot-watch.js';
import type { ResolvedEntry } from './catalog.js';
import { requireTool, runVirtualBox, runXen } from './engine-runner.js';
import { VBOX } from './engines/virtualbox.js';
import { exitCodeOfOutcome, type Outcome, VM_EXIT } from './exit-codes.js';
import { runGuest } from './guest-run.js';
import { HttpstorgedMount, type ImageStats } from './httpstorged.js';
import { HttpstorgedNbd } from './httpstorged-nbd.js';
import { DEFAULT_STATE_DIR, KvmProbe, type ProbeResult } from './kvm-probe.js';
import { type Engine, renderPlan } from './launch-plan.js';
import { downloadTo, localPath } from './locations.js';
import { type ProfileOptions, profileArgs, profileFlags } from './mount-options.js';
import { createOverlay, removeOverlay } from './overlay.js';
import { chooseVia, type ViaChoice, type ViaRequest } from './via.js';
import type { VmIo } from './vm-io.js';
import {
  type AccelRequest,
  chooseDisplay,
  DEFAULT_CPUS,
  DEFAULT_DISK_BUS,
  DEFAULT_MEM_MIB,
  type DiskBus,
  MIN_MEM_MIB,
  type Net,
  type VmSpec,
  vmName,
} from './vm-spec.js';

/**
 * `thfc-vm boot IMAGE`: mount (when IMAGE is an index), overlay, run the
 * guest, and always clean up what this run created, whatever ended it.
 */

export interface BootOptions {
  /** A disk file, an index URL or path, or a catalog entry name. */
  readonly image: string;
  /** Where to look names up: a catalog.json URL or path, or a store URL/directory. */
  readonly catalog?: string | undefined;
  /** An entry already chosen (the menu); `image` is then only its name. */
  readonly entry?: ResolvedEntry | undefined;
  readonly engine?: Engine | undefined;
  readonly accel?: AccelRequest | undefined;
  readonly mem?: number | undefined;
  readonly cpus?: number | undefined;
  readonly kernel?: string | undefined;
  readonly initrd?: string | undefined;
  readonly append?: string | undefined;
  readonly diskBus?: DiskBus | undefined;
  readonly net?: Net | undefined;
  readonly serial?: boolean | undefined;
  readonly vnc?: string | undefined;
  /** Throw the guest's writes away (qemu -snapshot) instead of keeping them in an overlay for the run. */
  readonly snapshot?: boolean | undefined;
  /** Keep the overlay (under STATE/overlays) after the guest stops. */
  readonly keepOverlay?: boolean | undefined;
  readonly dryRun?: boolean | undefined;
  /** How an index reaches qemu: a FUSE mount, an NBD export, or auto (chooseVia). */
  readonly via?: ViaRequest | undefined;
  /** httpstorged options, passed through unchanged when IMAGE has to be mounted. */
  readonly mountArgs?: readonly string[] | undefined;
  /** Boot-profile record / replay / fill for the mount (indexes only: refused for a disk file). */
  readonly profile?: ProfileOptions | undefined;
  /** Write a JSON report of the run here (bench and scripts). */
  readonly report?: string | undefined;
  readonly stateDir?: string | undefined;
  /** Probe KVM again instead of trusting the cached answer. */
  readonly refreshProbe?: boolean | undefined;
  /**
   * With the serial console on this terminal, stop a guest that writes
   * nothing to it for this long (DEFAULT_BOOT_TIMEOUT_SECONDS); 0: never.
   */
  readonly bootTimeoutSeconds?: number | undefined;
}

export interface BootReport {
  image: string;
  /** The guest wrote nothing to its serial console within --boot-timeout and was stopped. */
  bootTimedOut?: true | undefined;
  name: string;
  source: 'file' | 'index' | 'catalog';
  index?: string | undefined;
  disk?: string | undefined;
  engine: Engine;
  accel?: string | undefined;
  accelReason?: string | undefined;
  kvmFallback?: string | undefined;
  outcome?: Outcome | 'dry-run' | undefined;
  exitCode?: number | undefined;
  qemu?: { code: number | null; signal: string | null; stoppedBy: string | undefined } | undefined;
  overlayKept?: string | undefined;
  seconds: { mount?: number; overlay?: number; guest?: number; total?: number };
  /** How the index reached qemu (an index only). */
  via?: 'nbd' | 'fuse' | undefined;
  mount?: ImageStats | undefined;
  /** With --record-profile: the profile httpstorged wrote when the mount stopped. */
  profile?: { recorded: string; blocks: number } | undefined;
  cleanup: { clean: boolean; problems: string[] };
}

export interface BootResult {
  readonly outcome: Outcome | 'dry-run';
  readonly exitCode: number;
  readonly report: BootReport;
}

const seconds = (ms: number) => Math.round(ms) / 1000;

export async function runBoot(o: BootOptions, io: VmIo): Promise<BootResult> {
  const t0 = performance.now();
  const say = (line: string) => io.stderr.write(`thfc-vm: ${line}\n`);
  const engine: Engine = o.engine ?? 'qemu';
  // Absolute: the overlay names the mounted disk as its backing file, which qemu resolves from the overlay's directory.
  const stateDir = resolve(io.cwd, o.stateDir ?? DEFAULT_STATE_DIR);

  const target = await resolveTarget({ ...o, pool: o.mountArgs?.includes('--pool') }, io);
  const defaults: CatalogBoot = target.entry?.boot ?? {};
  if (o.snapshot && o.keepOverlay)
    throw new UsageError('--snapshot throws writes away; --keep-overlay keeps them: choose one');
  if (o.snapshot && engine !== 'qemu')
    throw new UsageError(`--snapshot is qemu's; with ${engine} the guest's writes are dropped after the run anyway`);
  if (engine === 'virtualbox' && (o.kernel !== undefined || o.initrd !== undefined))
    throw new UsageError(
      "VirtualBox has no direct kernel boot: drop --kernel/--initrd (it boots the disk's own loader)",
    );
  const kernelLoc = engine === 'virtualbox' ? undefined : (o.kernel ?? target.entry?.kernelUrl);
  const initrdLoc = engine === 'virtualbox' ? undefined : (o.initrd ?? target.entry?.initrdUrl);
  const append = engine === 'virtualbox' ? undefined : (o.append ?? defaults.append);
  if (append !== undefined && kernelLoc === undefined)
    throw new UsageError('--append needs --kernel: a kernel command line only applies to direct kernel boot');
  for (const loc of [kernelLoc, initrdLoc]) {
    const p = loc === undefined ? undefined : localPath(loc);
    if (
      p !== undefined &&
      !(await access(resolve(io.cwd, p), constants.R_OK).then(
        () => true,
        () => false,
      ))
    )
      throw new InputError(`${p}: no such file (or not readable)`);
  }
  await checkProfileOptions(o.profile, target, io.cwd);
  const mountArgs = [...(o.mountArgs ?? []), ...profileArgs(o.profile, io.cwd)];
  const via = target.kind === 'index' ? await viaFor(o.via ?? 'auto', engine, io) : undefined;
  const memMiB = o.mem ?? defaults.mem ?? DEFAULT_MEM_MIB;
  if (memMiB < MIN_MEM_MIB) throw new UsageError(`--mem ${memMiB}: a guest needs at least ${MIN_MEM_MIB} MiB`);

  const report: BootReport = {
    image: o.image,
    name: target.name,
    source: target.source,
    index: target.kind === 'index' ? target.location : undefined,
    engine,
    seconds: {},
    cleanup: { clean: true, problems: [] },
  };
  const probe = new KvmProbe(
    { tools: io.tools, hostKernel: io.hostKernel, now: io.now, kvmDevice: io.kvmDevice },
    { stateDir },
  );
  const accelFor = async (): Promise<{ choice: AccelChoice; probed?: ProbeResult }> => {
    const request = o.accel ?? 'auto';
    if (engine !== 'qemu' || request !== 'auto') return { choice: chooseAccel(request, undefined) };
    const probed = await probe.check(io.signal, { refresh: !!o.refreshProbe });
    return { choice: chooseAccel('auto', probed), probed };
  };

  const display = chooseDisplay({
    vnc: o.vnc,
    serial: o.serial,
    graphical: !!(io.env.DISPLAY || io.env.WAYLAND_DISPLAY),
  });
  const bootTimeoutMs = (o.bootTimeoutSeconds ?? DEFAULT_BOOT_TIMEOUT_SECONDS) * 1000;
  const spec = (
    disk: string,
    accel: AccelChoice,
    files: { kernel?: string; initrd?: string },
    runDir: string,
  ): VmSpec => ({
    name: vmName(target.name),
    drive: {
      path: disk,
      format: o.snapshot || engine === 'virtualbox' ? 'raw' : 'qcow2',
      bus: o.diskBus ?? defaults.diskBus ?? DEFAULT_DISK_BUS,
      snapshot: !!o.snapshot,
    },
    accel: accel.accel,
    memMiB,
    cpus: o.cpus ?? defaults.cpus ?? DEFAULT_CPUS,
    kernel: files.kernel,
    initrd: files.initrd,
    append,
    display,
    net: o.net ?? defaults.net ?? 'none',
    consoleLog: bootTimeoutMs && display.kind === 'serial' ? join(runDir, 'console.log') : undefined,
  });

  if (o.dryRun) {
    const { choice } = await accelFor();
    const runDir = join(stateDir, 'run-DRYRUN');
    const layout = runLayout(runDir, target, stateDir, { ...o, via: via?.via }, io.now());
    const files = {
      kernel: kernelLoc === undefined ? undefined : (localFile(kernelLoc, io.cwd) ?? join(runDir, 'kernel')),
      initrd: initrdLoc === undefined ? undefined : (localFile(initrdLoc, io.cwd) ?? join(runDir, 'initrd')),
    };
    const plan = buildPlan(engine, {
      spec: spec(engine !== 'virtualbox' && !o.snapshot ? layout.overlay : layout.rawDisk, choice, files, runDir),
      target,
      layout,
      accel: choice,
      mountArgs,
      downloads: downloadsFor(kernelLoc, initrdLoc, files),
      keepOverlay: !!o.keepOverlay,
      snapshot: !!o.snapshot,
      vboxMajor: undefined,
    });
    io.stdout.write(renderPlan(plan));
    report.outcome = 'dry-run';
    report.exitCode = VM_EXIT.OK;
    return { outcome: 'dry-run', exitCode: VM_EXIT.OK, report };
  }

  if (engine === 'xen')
    await requireTool('xl', io.env, 'Xen is not installed here; --dry-run prints the xl config for a Xen host');
  if (engine === 'virtualbox')
    await requireTool(VBOX, io.env, 'VirtualBox is not installed here; --dry-run prints the VBoxManage commands');

  await mkdir(stateDir, { recursive: true });
  const runDir = await mkdtemp(join(stateDir, 'run-'));
  const layout = runLayout(runDir, target, stateDir, { ...o, via: via?.via }, io.now());
  let mount: HttpstorgedMount | HttpstorgedNbd | undefined;
  let overlayMade = false;
  let outcome: Outcome = 'failed';
  const recordPath = o.profile?.record === undefined ? undefined : resolve(io.cwd, o.profile.record);
  // What was at the --record-profile path before: a file still like it afterwards is not this run's recording.
  const recordBefore = recordPath === undefined ? undefined : await stat(recordPath).catch(() => undefined);
  try {
    // Mount and probe side by side: both take a fraction of a second, and neither needs the other.
    const tMount = performance.now();
    if (via) {
      report.via = via.via;
      say(`image via ${via.reason}`);
    }
    const mountP =
      target.kind === 'index' && via?.via === 'nbd'
        ? HttpstorgedNbd.start(io.httpstorged(), {
            socket: layout.socket,
            index: target.location,
            args: mountArgs,
            logFile: join(runDir, 'httpstorged.log'),
            signal: io.signal,
          })
        : target.kind === 'index'
          ? (async () => {
              await mkdir(layout.mountpoint);
              return HttpstorgedMount.start(io.httpstorged(), {
                mountpoint: layout.mountpoint,
                index: target.location,
                args: mountArgs,
                logFile: join(runDir, 'httpstorged.log'),
                signal: io.signal,
              });
            })()
          : Promise.resolve(undefined);
    const [m, a] = await Promise.allSettled([mountP, accelFor()]);
    if (m.status === 'fulfilled') mount = m.value;
    if (m.status === 'rejected') throw m.reason;
    if (a.status === 'rejected') throw a.reason;
    const { choice, probed } = a.value;
    if (mount) report.seconds.mount = seconds(performance.now() - tMount);
    const rawDisk = mount?.disk ?? target.location;
    report.disk = rawDisk;
    report.accel = choice.accel;
    report.accelReason = choice.reason;
    if (engine === 'qemu') say(`accelerator ${choice.reason}`);

    const files = {
      kernel: await fetchBootFile(kernelLoc, join(runDir, 'kernel'), io),
      initrd: await fetchBootFile(initrdLoc, join(runDir, 'initrd'), io),
    };
    io.signal.throwIfAborted();
    if (files.kernel === undefined && (await readsBootSector(rawDisk)) === false) {
      say(
        `warning: ${rawDisk} has no boot sector (no 0x55AA at byte 510) and no --kernel is given: the guest will likely find nothing to boot`,
      );
    }

    if (engine === 'virtualbox') {
      outcome = await runVirtualBox(spec(rawDisk, choice, {}, runDir), rawDisk, runDir, io, say);
    } else {
      const useOverlay = !o.snapshot;
      const tOverlay = performance.now();
      if (useOverlay) {
        if (o.keepOverlay) await mkdir(join(stateDir, 'overlays'), { recursive: true });
        await createOverlay(io.tools, { backing: rawDisk, path: layout.overlay, signal: io.signal });
        overlayMade = true;
        report.seconds.overlay = seconds(performance.now() - tOverlay);
      }
      const vm = spec(useOverlay ? layout.overlay : rawDisk, choice, files, runDir);
      const tGuest = performance.now();
      if (engine === 'xen') outcome = await runXen(vm, layout, useOverlay, io);
      else {
        const ran = await runGuest(
          vm,
          choice,
          probed,
          probe,
          io,
          say,
          async () => {
            if (!useOverlay) return;
            await removeOverlay(layout.overlay);
            await createOverlay(io.tools, { backing: rawDisk, path: layout.overlay, signal: io.signal });
          },
          bootTimeoutMs,
        );
        outcome = ran.outcome;
        report.qemu = { code: ran.exit.code, signal: ran.exit.signal, stoppedBy: ran.exit.stoppedBy };
        report.kvmFallback = ran.fallback;
        if (ran.fallback) report.accel = 'tcg';
        report.bootTimedOut = ran.bootTimedOut || undefined;
        if (ran.bootTimedOut) {
          const last = ran.exit.stderr
            .trim()
            .split('\n')
            .filter((l) => l && !/terminating on signal/.test(l))
            .slice(-3)
            .join(' / ');
          say(
            `boot timeout: the guest wrote nothing to its serial console in ${bootTimeoutMs / 1000} s, stopped (nothing bootable on the disk? no --kernel? --boot-timeout 0 waits for ever)${last ? `; qemu said: ${last}` : ''}`,
          );
        } else if (outcome === 'failed' && !ran.explained) {
          const last = ran.exit.stderr.trim().split('\n').pop();
          say(
            `qemu ${ran.exit.signal ? `died of ${ran.exit.signal}` : `exited with status ${ran.exit.code}`}${last ? `: ${last}` : ''}`,
          );
        }
      }
      report.seconds.guest = seconds(performance.now() - tGuest);
    }
  } catch (e) {
    if (io.signal.aborted) outcome = 'interrupted';
    else {
      report.seconds.total = seconds(performance.now() - t0);
      await cleanup();
      throw e;
    }
  }
  await cleanup();
  report.outcome = outcome;
  let exitCode = exitCodeOfOutcome(outcome);
  if (!report.cleanup.clean && exitCode === VM_EXIT.OK) exitCode = VM_EXIT.IO;
  report.exitCode = exitCode;
  report.seconds.total = seconds(performance.now() - t0);
  if (o.report) await writeFile(o.report, `${JSON.stringify(report, null, 2)}\n`);
  return { outcome, exitCode, report };

  // Cleanup runs after an abort too, so it takes no abort signal; each step is bounded on its own.
  async function cleanup(): Promise<void> {
    const problem = (p: string) => {
      report.cleanup.clean = false;
      report.cleanup.problems.push(p);
      say(`cleanup: ${p}`);
    };
    if (mount) {
      report.mount = await mount.stats(new AbortController().signal).catch(() => undefined);
      const s = report.mount;
      if (s) {
        say(
          `${s.name}: fetched ${mib(s.bytesDownloaded)} (${s.blocksFetched} blocks) for ${mib(s.bytesRead)} read by the guest, of a ${mib(s.size)} image`,
        );
        const p = s.prefetch;
        if (p)
          say(
            `${s.name}: boot profile of ${p.blocks} blocks from ${p.source}: ${p.hit} hit, ${p.wasted} fetched but unused, ${p.pending} not fetched${p.failed ? `, ${p.failed} failed` : ''}`,
          );
      }
    }
    if (overlayMade) {
      if (o.keepOverlay) {
        report.overlayKept = layout.overlay;
        say(`overlay kept: ${layout.overlay} (backing file ${report.disk})`);
      } else await removeOverlay(layout.overlay).catch((e) => problem(`cannot remove ${layout.overlay}: ${e.message}`));
    }
    if (mount && !(await mount.stop()))
      problem(
        mount instanceof HttpstorgedNbd
          ? 'httpstorged nbd did not stop cleanly; it was killed'
          : `httpstorged did not stop cleanly; ${layout.mountpoint} was detached`,
      );
    // httpstorged writes the profile as it unmounts, so it can only be read now.
    if (mount && recordPath !== undefined) {
      const recorded = await readRecordedProfile(recordPath, recordBefore);
      if (typeof recorded === 'string') {
        const why = await mount.lastMessage();
        problem(`${recorded}${why ? ` (httpstorged: ${why})` : ''}`);
      } else {
        report.profile = recorded;
        say(`recorded a boot profile of ${recorded.blocks} blocks to ${recordPath} (publish: thfc-pack profile add)`);
      }
    }
    if (await isMounted(layout.mountpoint).catch(() => false)) problem(`${layout.mountpoint} is still mounted`);
    else
      await rm(runDir, { recursive: true, force: true }).catch((e) => problem(`cannot remove ${runDir}: ${e.message}`));
  }
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/**
 * --via for an index: NBD needs qemu (the other engines name the disk as a
 * file); auto looks at this host (a usable /dev/fuse, root).
 */
async function viaFor(request: ViaRequest, engine: Engine, io: VmIo): Promise<ViaChoice> {
  if (engine !== 'qemu') {
    if (request === 'nbd') throw new UsageError(`--via nbd needs qemu: ${engine} reads the image as a file`);
    return { via: 'fuse', reason: `fuse (${engine} reads the image as a file)` };
  }
  const fuse = await access(io.fuseDevice ?? '/dev/fuse', constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
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

/** The profile httpstorged wrote at unmount: its size, or why there is none (a cleanup problem). */
async function readRecordedProfile(
  path: string,
  before: Stats | undefined,
): Promise<{ recorded: string; blocks: number } | string> {
  const st = await stat(path).catch(() => undefined);
  // httpstorged writes it through a temp file and a rename: a new inode.
  if (!st || (before && st.ino === before.ino && st.mtimeMs === before.mtimeMs))
    return `httpstorged wrote no boot profile to ${path}`;
  try {
    return { recorded: path, blocks: decodeProfile(await readFile(path), path).blocks.length };
  } catch (e) {
    return `the boot profile ${path} is unreadable: ${(e as Error).message}`;
  }
}

/** A local kernel/initrd is used where it is; an http(s) one is downloaded into the run directory. */
async function fetchBootFile(location: string | undefined, into: string, io: VmIo): Promise<string | undefined> {
  if (location === undefined) return undefined;
  const local = localFile(location, io.cwd);
  if (local !== undefined) return local;
  await downloadTo(location, into, io.signal);
  return into;
}
