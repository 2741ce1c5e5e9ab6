#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { release } from 'node:os';
import { pathToFileURL } from 'node:url';
import { count, ignoreClosedOutput, oneLineParseErrors, reportError, wholeSeconds } from '@thfc/cli';
import { InvalidArgumentError, parseSize, UsageError } from '@thfc/format';
import { Command, Option } from 'commander';
import { type BootOptions, runBoot } from './boot.js';
import { DEFAULT_BOOT_TIMEOUT_SECONDS } from './boot-watch.js';
import { VM_EXIT } from './exit-codes.js';
import { bundledHttpstorged, type HttpstorgedCommand } from './httpstorged.js';
import { DEFAULT_STATE_DIR, KvmProbe } from './kvm-probe.js';
import type { Engine } from './launch-plan.js';
import { runList } from './list.js';
import { MOUNT_FLAGS, mountArgs, profileOptionsOf } from './mount-options.js';
import { DEFAULT_QEMU_TOOLS } from './qemu.js';
import { runMenu } from './run-menu.js';
import type { VmIo } from './vm-io.js';
import { type AccelRequest, parseAccel, parseDiskBus, parseNet } from './vm-spec.js';

/**
 * thfc-vm: boot VMs off thfc images, and the OS menu. A commander table over
 * runBoot / runList / runMenu; the only file that touches `process`, and the
 * one place errors become exit codes (docs/thfc-vm.md has the table).
 * httpfuse-kvm and httpfuse-qemu call main() with the menu preselected.
 */

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** --mem 512 (MiB), 512M, 2G. */
function parseMem(v: string): number {
  if (/^\d+$/.test(v)) return Number(v);
  const bytes = parseSize(v);
  if (bytes % (1024 * 1024)) throw new InvalidArgumentError(`--mem ${v}: give whole MiB (512, 512M, 2G)`);
  return bytes / (1024 * 1024);
}

function addBootOptions(cmd: Command): Command {
  cmd
    .addOption(
      new Option('--engine <engine>', 'qemu, or xen/virtualbox (with --dry-run: print their config)')
        .choices(['qemu', 'xen', 'virtualbox'])
        .default('qemu'),
    )
    .option('--accel <accel>', 'kvm, tcg or auto (KVM only where the cached probe says it runs guests)', parseAccel)
    .option('--no-kvm', 'force TCG (same as --accel tcg)')
    .option('--mem <size>', 'guest memory: MiB, or with a unit (512M, 2G) [default 512]', parseMem)
    .option('--cpus <n>', 'guest CPUs [default 1]', count('--cpus', 1))
    .option('--kernel <file|url>', 'boot this kernel directly')
    .option('--initrd <file|url>', 'initial ramdisk for --kernel')
    .option('--append <cmdline>', 'kernel command line for --kernel')
    .option('--serial', 'serial console on this terminal (the default without a display)')
    .option('--vnc <display>', 'VNC display (:1 = port 5901) instead of the serial console')
    .option('--snapshot', "throw the guest's writes away when it stops (no overlay file)")
    .option('--keep-overlay', 'keep the qcow2 overlay (under STATE-DIR/overlays) after the guest stops')
    .option('--net <mode>', 'user: user-mode networking (NAT); none [default]', parseNet)
    .option('--disk-bus <bus>', 'virtio [default] or ide (guests without virtio drivers)', parseDiskBus)
    .option(
      '--boot-timeout <seconds>',
      `stop a guest that writes nothing to its serial console for this long; 0: never [default ${DEFAULT_BOOT_TIMEOUT_SECONDS}]`,
      wholeSeconds('--boot-timeout'),
    )
    .option('--dry-run', 'print the commands (qemu command line, xl config, VBoxManage) and do nothing else')
    .option('--report <file>', 'write a JSON report of the run (times, accelerator, bytes fetched)')
    .option('--refresh-probe', 'probe KVM again instead of trusting the cached answer')
    .addOption(
      new Option(
        '--via <path>',
        'how an index reaches qemu: fuse (a mount), nbd (an export qemu reconnects to), or auto: nbd without FUSE or root',
      )
        .choices(['nbd', 'fuse', 'auto'])
        .default('auto'),
    );
  for (const [flag, value, help, repeatable] of MOUNT_FLAGS) {
    const spec = value ? `${flag} ${value}` : flag;
    if (repeatable) cmd.option(spec, `(mount) ${help}`, collect);
    else cmd.option(spec, `(mount) ${help}`);
  }
  cmd
    .option('--record-profile <file>', '(mount) record the blocks the guest touches into FILE, a boot profile')
    .option('--prefetch <file|url>', '(mount) replay this boot profile (default: NAME.profile beside the index)')
    .option('--no-prefetch', '(mount) do not replay a published boot profile')
    .option('--fill', '(mount) after the profile, fetch the rest of the image in the background');
  return cmd;
}

function accelOf(o: Record<string, unknown>): AccelRequest {
  const accel = o.accel as AccelRequest | undefined;
  if (o.kvm === false) {
    if (accel === 'kvm') throw new UsageError('--no-kvm and --accel kvm contradict each other');
    return 'tcg';
  }
  return accel ?? 'auto';
}

function bootOptions(o: Record<string, unknown>, stateDir: string): Omit<BootOptions, 'image'> {
  return {
    catalog: o.catalog as string | undefined,
    engine: o.engine as Engine,
    via: o.via as BootOptions['via'],
    accel: accelOf(o),
    mem: o.mem as number | undefined,
    cpus: o.cpus as number | undefined,
    kernel: o.kernel as string | undefined,
    initrd: o.initrd as string | undefined,
    append: o.append as string | undefined,
    diskBus: o.diskBus as BootOptions['diskBus'],
    net: o.net as BootOptions['net'],
    serial: o.serial as boolean | undefined,
    vnc: o.vnc as string | undefined,
    snapshot: !!o.snapshot,
    keepOverlay: !!o.keepOverlay,
    dryRun: !!o.dryRun,
    mountArgs: mountArgs(o),
    profile: profileOptionsOf(o),
    report: o.report as string | undefined,
    stateDir,
    refreshProbe: !!o.refreshProbe,
    bootTimeoutSeconds: o.bootTimeout as number | undefined,
  };
}

/** The catalog `list` and `menu` read: the one named, else $THFC_CATALOG. */
function catalogArg(arg: string | undefined, io: VmIo): string {
  const c = arg ?? io.env.THFC_CATALOG;
  if (!c) throw new UsageError('no catalog: give CATALOG-URL (a catalog.json or store URL) or set THFC_CATALOG');
  return c;
}

/**
 * The command table over runBoot / runList / runMenu and the KVM probe. A
 * command's exit code (the guest's outcome, the probe's answer) is left in
 * `exit.code`; errors are thrown to main.
 */
function commandTable(io: VmIo, exit: { code: number }): Command {
  const program = new Command('thfc-vm')
    .description('Boot VMs off thfc images (mounted over HTTP by httpstorged), through a copy-on-write overlay.')
    .version('0.1.0')
    .option('--state-dir <dir>', 'KVM probe cache, run directories and kept overlays', DEFAULT_STATE_DIR)
    .exitOverride();
  const stateDir = () => program.opts().stateDir as string;

  addBootOptions(
    program
      .command('boot')
      .description('boot IMAGE: a disk file, an index URL (mounted through httpstorged) or a catalog entry name')
      .argument('<image>', 'disk file | http(s)://…/NAME.idx | NAME.idx | catalog entry name (with --catalog)')
      .option('--catalog <url>', 'catalog to look IMAGE up in (default $THFC_CATALOG)'),
  ).action(async (image: string, o: Record<string, unknown>) => {
    const r = await runBoot(
      { image, ...bootOptions({ ...o, catalog: o.catalog ?? io.env.THFC_CATALOG }, stateDir()) },
      io,
    );
    exit.code = r.exitCode;
  });

  program
    .command('list')
    .description('print the catalog: number, name, description, index')
    .argument('[catalog-url]', 'catalog.json URL or path, or a store (default $THFC_CATALOG)')
    .option('--json', 'print the resolved catalog as JSON')
    .action(async (catalog: string | undefined, o: { json?: boolean }) => {
      await runList({ catalog: catalogArg(catalog, io), json: o.json }, io);
    });

  addBootOptions(
    program
      .command('menu')
      .description('choose an image from the catalog (arrow keys or a number, Enter; q quits) and boot it')
      .argument('[catalog-url]', 'catalog.json URL or path, or a store (default $THFC_CATALOG)'),
  ).action(async (catalog: string | undefined, o: Record<string, unknown>) => {
    const boot = bootOptions(o, stateDir());
    const r = await runMenu(
      {
        catalog: catalogArg(catalog, io),
        boot,
        accelLabel: boot.accel === 'auto' ? 'auto (KVM if it works, else TCG)' : `${boot.accel?.toUpperCase()} forced`,
        columns: process.stdout.columns,
      },
      io,
    );
    exit.code = r.chosen ? r.boot.exitCode : VM_EXIT.OK;
  });

  program
    .command('probe')
    .description('does KVM really run guests here? (exit 0 yes, 1 no); the answer is cached per kernel and qemu')
    .option('--refresh', 'probe again instead of using the cached answer')
    .option('--json', 'print the answer as JSON')
    .action(async (o: { refresh?: boolean; json?: boolean }) => {
      exit.code = await runProbe({ ...o, stateDir: stateDir() }, io);
    });
  return program;
}

async function runProbe(o: { refresh?: boolean; json?: boolean; stateDir: string }, io: VmIo): Promise<number> {
  const probe = new KvmProbe(
    { tools: io.tools, hostKernel: io.hostKernel, now: io.now, kvmDevice: io.kvmDevice },
    { stateDir: o.stateDir },
  );
  const r = await probe.check(io.signal, { refresh: o.refresh });
  io.stdout.write(
    o.json
      ? `${JSON.stringify(r)}\n`
      : `KVM ${r.works ? 'works' : 'does not work here'}: ${r.reason}${r.cached ? ` (cached answer of ${r.probedAt})` : ''}\n`,
  );
  return r.works ? VM_EXIT.OK : VM_EXIT.CHECK_FAILED;
}

/** This process as thfc-vm's commands see it: its streams, environment, tools and host. */
function processIo(signal: AbortSignal): VmIo {
  let httpstorged: HttpstorgedCommand | undefined;
  const stdin = process.stdin as NodeJS.ReadStream;
  return {
    stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    signal,
    env: process.env,
    cwd: process.cwd(),
    guestConsole: 'inherit',
    stdinIsTty: stdin.isTTY === true,
    setRawMode: stdin.isTTY ? (raw) => stdin.setRawMode(raw) : undefined,
    tools: {
      system: process.env.THFC_QEMU_SYSTEM || DEFAULT_QEMU_TOOLS.system,
      img: process.env.THFC_QEMU_IMG || DEFAULT_QEMU_TOOLS.img,
    },
    httpstorged: () => {
      httpstorged ??= process.env.THFC_HTTPSTORGED
        ? { program: process.env.THFC_HTTPSTORGED, prefix: [] }
        : bundledHttpstorged(process.execPath);
      return httpstorged;
    },
    hostKernel: release(),
    root: process.getuid?.() === 0,
    now: () => new Date(),
  };
}

/**
 * `invokedAs`: httpfuse-kvm and httpfuse-qemu run the menu under their own
 * name, so their help and errors name them, not thfc-vm.
 */
export async function main(argv: readonly string[], invokedAs?: string): Promise<number> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    // First: stop the guest and clean up. A third: leave now (a mount or overlay may be left behind).
    if (signals === 1) {
      process.stderr.write(`\nthfc-vm: ${sig}: stopping the guest and cleaning up\n`);
      controller.abort(new Error(`interrupted by ${sig}`));
    } else if (signals >= 3) process.exit(VM_EXIT.INTERRUPTED);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);

  const exit = { code: VM_EXIT.OK as number };
  const program = commandTable(processIo(controller.signal), exit);
  ignoreClosedOutput();
  try {
    if (invokedAs) {
      const menu = program.commands.find((c) => c.name() === 'menu') as Command;
      menu.configureHelp({ commandUsage: (c) => `${invokedAs} ${c.usage()}` });
      oneLineParseErrors(program, invokedAs, (c) => (c === menu ? invokedAs : `thfc-vm ${c.name()}`));
    } else oneLineParseErrors(program);
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    exit.code = reportError('thfc-vm', e);
  } finally {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, onSignal);
  }
  return exit.code;
}

/** Runs main() when this file is the program (not when httpfuse-kvm/-qemu import it). */
export function isMainModule(url: string): boolean {
  try {
    return url === pathToFileURL(realpathSync(process.argv[1] ?? '')).href;
  } catch {
    return false;
  }
}

if (isMainModule(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
