import { mkdir, mkdtemp, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AccelChoice } from './accel.js';
import { type BootRun, cleanUpRun } from './boot-cleanup.js';
import { buildPlan, downloadsFor, localFile, runLayout } from './boot-plan.js';
import { accelFor, type BootSetup, setUpBoot, specFor } from './boot-setup.js';
import { readsBootSector } from './boot-watch.js';
import type { ResolvedEntry } from './catalog.js';
import { requireTool, runVirtualBox, runXen } from './engine-runner.js';
import { VBOX } from './engines/virtualbox.js';
import { exitCodeOfOutcome, type Outcome, VM_EXIT } from './exit-codes.js';
import { runGuest } from './guest-run.js';
import { HttpstorgedMount, type ImageStats } from './httpstorged.js';
import { HttpstorgedNbd } from './httpstorged-nbd.js';
import type { ProbeResult } from './kvm-probe.js';
import { type Engine, renderPlan } from './launch-plan.js';
import { downloadTo } from './locations.js';
import type { ProfileOptions } from './mount-options.js';
import { createOverlay, removeOverlay } from './overlay.js';
import type { ViaRequest } from './via.js';
import type { VmIo } from './vm-io.js';
import type { AccelRequest, DiskBus, Net } from './vm-spec.js';

/**
 * `thfc-vm boot IMAGE`: decide what the boot will do (setUpBoot), then print
 * it (--dry-run) or carry it out: mount (when IMAGE is an index), overlay,
 * run the guest, and always clean up what this run created, whatever ended it.
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

export interface BootResult {
  readonly outcome: Outcome | 'dry-run';
  readonly exitCode: number;
  readonly report: BootReport;
}

const seconds = (ms: number) => Math.round(ms) / 1000;

export async function runBoot(o: BootOptions, io: VmIo): Promise<BootResult> {
  const t0 = performance.now();
  const s = await setUpBoot(o, io);
  const report: BootReport = {
    image: o.image,
    name: s.target.name,
    source: s.target.source,
    index: s.target.kind === 'index' ? s.target.location : undefined,
    engine: s.engine,
    seconds: {},
    cleanup: { clean: true, problems: [] },
  };
  return o.dryRun ? printPlan(s, report, io) : runPlan(s, report, io, t0);
}

/** --dry-run: the commands the boot would run, with the run directory's paths predicted. */
async function printPlan(s: BootSetup, report: BootReport, io: VmIo): Promise<BootResult> {
  const { o, engine, kernelLoc, initrdLoc } = s;
  const { choice } = await accelFor(s, io);
  const runDir = join(s.stateDir, 'run-DRYRUN');
  const layout = runLayout(runDir, s.target, s.stateDir, { ...o, via: s.via?.via }, io.now());
  const files = {
    kernel: kernelLoc === undefined ? undefined : (localFile(kernelLoc, io.cwd) ?? join(runDir, 'kernel')),
    initrd: initrdLoc === undefined ? undefined : (localFile(initrdLoc, io.cwd) ?? join(runDir, 'initrd')),
  };
  const plan = buildPlan(engine, {
    spec: specFor(s, engine !== 'virtualbox' && !o.snapshot ? layout.overlay : layout.rawDisk, choice, files, runDir),
    target: s.target,
    layout,
    accel: choice,
    mountArgs: s.mountArgs,
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

/** The boot itself, in a run directory of its own that is removed afterwards, whatever ended the run. */
async function runPlan(s: BootSetup, report: BootReport, io: VmIo, t0: number): Promise<BootResult> {
  const say = (line: string) => io.stderr.write(`thfc-vm: ${line}\n`);
  if (s.engine === 'xen')
    await requireTool('xl', io.env, 'Xen is not installed here; --dry-run prints the xl config for a Xen host');
  if (s.engine === 'virtualbox')
    await requireTool(VBOX, io.env, 'VirtualBox is not installed here; --dry-run prints the VBoxManage commands');

  await mkdir(s.stateDir, { recursive: true });
  const runDir = await mkdtemp(join(s.stateDir, 'run-'));
  const recordPath = s.o.profile?.record === undefined ? undefined : resolve(io.cwd, s.o.profile.record);
  const run: BootRun = {
    runDir,
    layout: runLayout(runDir, s.target, s.stateDir, { ...s.o, via: s.via?.via }, io.now()),
    mount: undefined,
    overlayMade: false,
    recordPath,
    recordBefore: recordPath === undefined ? undefined : await stat(recordPath).catch(() => undefined),
  };
  let outcome: Outcome = 'failed';
  try {
    outcome = await bootGuest(s, run, report, io, say);
  } catch (e) {
    if (io.signal.aborted) outcome = 'interrupted';
    else {
      report.seconds.total = seconds(performance.now() - t0);
      await cleanUpRun(run, !!s.o.keepOverlay, report, say);
      throw e;
    }
  }
  await cleanUpRun(run, !!s.o.keepOverlay, report, say);
  report.outcome = outcome;
  let exitCode = exitCodeOfOutcome(outcome);
  if (!report.cleanup.clean && exitCode === VM_EXIT.OK) exitCode = VM_EXIT.IO;
  report.exitCode = exitCode;
  report.seconds.total = seconds(performance.now() - t0);
  if (s.o.report) await writeFile(s.o.report, `${JSON.stringify(report, null, 2)}\n`);
  return { outcome, exitCode, report };
}

/** Mounts the image and chooses the accelerator side by side, fetches the boot files, and runs the guest. */
async function bootGuest(
  s: BootSetup,
  run: BootRun,
  report: BootReport,
  io: VmIo,
  say: (line: string) => void,
): Promise<Outcome> {
  // Mount and probe side by side: both take a fraction of a second, and neither needs the other.
  const tMount = performance.now();
  if (s.via) {
    report.via = s.via.via;
    say(`image via ${s.via.reason}`);
  }
  const [m, a] = await Promise.allSettled([startImage(s, run, io), accelFor(s, io)]);
  if (m.status === 'fulfilled') run.mount = m.value;
  if (m.status === 'rejected') throw m.reason;
  if (a.status === 'rejected') throw a.reason;
  const { choice, probed } = a.value;
  if (run.mount) report.seconds.mount = seconds(performance.now() - tMount);
  const rawDisk = run.mount?.disk ?? s.target.location;
  report.disk = rawDisk;
  report.accel = choice.accel;
  report.accelReason = choice.reason;
  if (s.engine === 'qemu') say(`accelerator ${choice.reason}`);

  const files = {
    kernel: await fetchBootFile(s.kernelLoc, join(run.runDir, 'kernel'), io),
    initrd: await fetchBootFile(s.initrdLoc, join(run.runDir, 'initrd'), io),
  };
  io.signal.throwIfAborted();
  if (files.kernel === undefined && (await readsBootSector(rawDisk)) === false) {
    say(
      `warning: ${rawDisk} has no boot sector (no 0x55AA at byte 510) and no --kernel is given: the guest will likely find nothing to boot`,
    );
  }
  if (s.engine === 'virtualbox')
    return runVirtualBox(specFor(s, rawDisk, choice, {}, run.runDir), rawDisk, run.runDir, io, say);
  return runOnOverlay(s, run, report, { rawDisk, choice, probed, files }, io, say);
}

/** An index is mounted (FUSE) or exported (NBD) by an httpstorged of this run's own; a disk file is used as it is. */
function startImage(s: BootSetup, run: BootRun, io: VmIo): Promise<HttpstorgedMount | HttpstorgedNbd | undefined> {
  const { target, mountArgs } = s;
  if (target.kind !== 'index') return Promise.resolve(undefined);
  const logFile = join(run.runDir, 'httpstorged.log');
  if (s.via?.via === 'nbd')
    return HttpstorgedNbd.start(io.httpstorged(), {
      socket: run.layout.socket,
      index: target.location,
      args: mountArgs,
      logFile,
      signal: io.signal,
    });
  return (async () => {
    await mkdir(run.layout.mountpoint);
    return HttpstorgedMount.start(io.httpstorged(), {
      mountpoint: run.layout.mountpoint,
      index: target.location,
      args: mountArgs,
      logFile,
      signal: io.signal,
    });
  })();
}

interface Booting {
  readonly rawDisk: string;
  readonly choice: AccelChoice;
  readonly probed: ProbeResult | undefined;
  readonly files: { kernel?: string | undefined; initrd?: string | undefined };
}

/** qemu or Xen: the guest writes to a qcow2 overlay over the raw disk (qemu -snapshot: to nothing kept). */
async function runOnOverlay(
  s: BootSetup,
  run: BootRun,
  report: BootReport,
  b: Booting,
  io: VmIo,
  say: (line: string) => void,
): Promise<Outcome> {
  const { layout } = run;
  const useOverlay = !s.o.snapshot;
  const tOverlay = performance.now();
  if (useOverlay) {
    if (s.o.keepOverlay) await mkdir(join(s.stateDir, 'overlays'), { recursive: true });
    await createOverlay(io.tools, { backing: b.rawDisk, path: layout.overlay, signal: io.signal });
    run.overlayMade = true;
    report.seconds.overlay = seconds(performance.now() - tOverlay);
  }
  const vm = specFor(s, useOverlay ? layout.overlay : b.rawDisk, b.choice, b.files, run.runDir);
  const tGuest = performance.now();
  let outcome: Outcome;
  if (s.engine === 'xen') outcome = await runXen(vm, layout, useOverlay, io);
  else {
    // A KVM failure at run time retries under TCG on a fresh overlay: the first attempt may have written to it.
    const freshOverlay = async () => {
      if (!useOverlay) return;
      await removeOverlay(layout.overlay);
      await createOverlay(io.tools, { backing: b.rawDisk, path: layout.overlay, signal: io.signal });
    };
    const ran = await runGuest(vm, b.choice, b.probed, s.probe, io, say, freshOverlay, s.bootTimeoutMs);
    outcome = ran.outcome;
    report.qemu = { code: ran.exit.code, signal: ran.exit.signal, stoppedBy: ran.exit.stoppedBy };
    report.kvmFallback = ran.fallback;
    if (ran.fallback) report.accel = 'tcg';
    report.bootTimedOut = ran.bootTimedOut || undefined;
    sayWhyQemuStopped(ran, s.bootTimeoutMs, say);
  }
  report.seconds.guest = seconds(performance.now() - tGuest);
  return outcome;
}

/** A boot timeout, or a failure runGuest has not explained: qemu's last words. */
function sayWhyQemuStopped(
  ran: Awaited<ReturnType<typeof runGuest>>,
  bootTimeoutMs: number,
  say: (line: string) => void,
): void {
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
  } else if (ran.outcome === 'failed' && !ran.explained) {
    const last = ran.exit.stderr.trim().split('\n').pop();
    say(
      `qemu ${ran.exit.signal ? `died of ${ran.exit.signal}` : `exited with status ${ran.exit.code}`}${last ? `: ${last}` : ''}`,
    );
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
