import { join, resolve } from 'node:path';
import type { AccelChoice } from './accel.js';
import type { Target } from './boot-target.js';
import { virtualBoxPlan } from './engines/virtualbox.js';
import { xlConfig } from './engines/xen.js';
import type { Engine, LaunchPlan, PlanFile, PlanStep } from './launch-plan.js';
import { localPath } from './locations.js';
import { overlayCreateArgs, QEMU_IMG, QEMU_SYSTEM, qemuArgs } from './qemu-args.js';
import { nbdDisk, type Via } from './via.js';
import type { VmSpec } from './vm-spec.js';

/** Where a boot's files go, and the boot's steps as data (what --dry-run prints). Pure. */

export interface Layout {
  readonly mountpoint: string;
  /** The NBD socket of `httpstorged nbd` (with --via nbd). */
  readonly socket: string;
  readonly overlay: string;
  /**
   * The raw disk as qemu names it: the file, MOUNTPOINT/NAME once mounted (predicted for --dry-run), or
   * with --via nbd the export on `socket` (a json: name).
   */
  readonly rawDisk: string;
  readonly via: Via;
}

export function runLayout(
  runDir: string,
  target: Target,
  stateDir: string,
  o: { keepOverlay?: boolean | undefined; via?: Via | undefined },
  now: Date,
): Layout {
  const mountpoint = join(runDir, 'mnt');
  const socket = join(runDir, 'nbd.sock');
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const via = o.via ?? 'fuse';
  return {
    mountpoint,
    socket,
    overlay: o.keepOverlay
      ? join(stateDir, 'overlays', `${target.name}-${stamp}.qcow2`)
      : join(runDir, 'overlay.qcow2'),
    rawDisk:
      target.kind !== 'index' ? target.location : via === 'nbd' ? nbdDisk(socket) : join(mountpoint, target.diskName),
    via,
  };
}

/** A file:// URL or path as an absolute path; undefined for http(s). */
export function localFile(location: string, cwd: string): string | undefined {
  const p = localPath(location);
  return p === undefined ? undefined : resolve(cwd, p);
}

/** The downloads thfc-vm does itself, shown as curl commands. */
export function downloadsFor(
  kernel: string | undefined,
  initrd: string | undefined,
  files: { kernel?: string | undefined; initrd?: string | undefined },
): PlanStep[] {
  const steps: PlanStep[] = [];
  for (const [loc, path] of [
    [kernel, files.kernel],
    [initrd, files.initrd],
  ] as const) {
    if (loc !== undefined && path !== undefined && localPath(loc) === undefined)
      steps.push({ program: 'curl', args: ['-fsSL', '-o', path, loc], comment: 'fetched by thfc-vm itself' });
  }
  return steps;
}

export interface PlanInput {
  readonly spec: VmSpec;
  readonly target: Target;
  readonly layout: Layout;
  readonly accel: AccelChoice;
  readonly mountArgs: readonly string[];
  readonly downloads: PlanStep[];
  readonly keepOverlay: boolean;
  readonly snapshot: boolean;
  readonly vboxMajor: number | undefined;
}

/** The steps of a boot as data (--dry-run prints them). Pure. */
export function buildPlan(engine: Engine, p: PlanInput): LaunchPlan {
  const runDir = resolve(p.layout.mountpoint, '..');
  const notes: string[] = [`image: ${p.target.location}${p.target.entry ? ` (catalog entry ${p.target.name})` : ''}`];
  const nbd = p.target.kind === 'index' && p.layout.via === 'nbd';
  const prepare: PlanStep[] = [
    { program: 'mkdir', args: ['-p', p.target.kind === 'index' && !nbd ? p.layout.mountpoint : runDir] },
  ];
  const cleanup: PlanStep[] = [];
  if (nbd) {
    prepare.push({
      program: 'httpstorged',
      args: ['nbd', '--socket', p.layout.socket, p.target.location, ...p.mountArgs],
      comment: `serve the image over NBD (thfc-vm runs it with -f as its own child; qemu reconnects if it restarts)`,
    });
  } else if (p.target.kind === 'index') {
    prepare.push({
      program: 'httpstorged',
      args: [p.layout.mountpoint, p.target.location, ...p.mountArgs],
      comment: `mount the image: ${p.layout.rawDisk} (thfc-vm runs it with -f as its own child)`,
    });
  }
  prepare.push(...p.downloads);
  const overlay = engine !== 'virtualbox' && !p.snapshot;
  if (overlay) {
    prepare.push({
      program: QEMU_IMG,
      args: overlayCreateArgs(p.layout.rawDisk, p.layout.overlay),
      comment: 'copy-on-write overlay: the guest writes here, the image is only read',
    });
    if (!p.keepOverlay) cleanup.push({ program: 'rm', args: ['-f', p.layout.overlay] });
  }
  if (nbd) cleanup.push({ program: 'kill', args: ['HTTPSTORGED-PID'], comment: 'stop httpstorged nbd (SIGTERM)' });
  else if (p.target.kind === 'index') cleanup.push({ program: 'httpstorged', args: ['umount', p.layout.mountpoint] });
  cleanup.push({ program: 'rm', args: ['-rf', runDir] });
  const files: PlanFile[] = [];
  let setup: PlanStep[] = [];
  let teardown: PlanStep[] = [];
  let run: PlanStep;
  if (engine === 'qemu') {
    notes.push(`accelerator ${p.accel.reason}`);
    run = { program: QEMU_SYSTEM, args: qemuArgs(p.spec) };
  } else if (engine === 'xen') {
    const cfg = join(runDir, `${p.spec.name}.cfg`);
    files.push({ path: cfg, content: xlConfig(p.spec, { disk: p.spec.drive.path, diskFormat: p.spec.drive.format }) });
    notes.push(
      'Xen HVM: the disk appears as /dev/xvda with PV drivers (/dev/sda emulated); adjust root= in the kernel command line.',
    );
    run = { program: 'xl', args: ['create', '-c', cfg], comment: 'runs the domain with its console here' };
    teardown = [{ program: 'xl', args: ['destroy', p.spec.name] }];
  } else {
    const vb = virtualBoxPlan(p.spec, { rawDisk: p.layout.rawDisk, runDir, major: p.vboxMajor });
    notes.push(...vb.notes);
    setup = vb.setup;
    run = vb.run;
    teardown = vb.teardown;
  }
  return { engine, notes, prepare, files, setup, run, teardown, cleanup };
}
