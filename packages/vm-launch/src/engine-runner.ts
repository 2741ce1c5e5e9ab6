import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, writeFile } from 'node:fs/promises';
import { basename, delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InterruptedError, StoreIoError } from '@thfc/format';
import { buildPlan, type Layout } from './boot-plan.js';
import { VBOX, virtualBoxPlan } from './engines/virtualbox.js';
import { EngineMissingError } from './errors.js';
import type { Outcome } from './exit-codes.js';
import type { PlanStep } from './launch-plan.js';
import type { VmIo } from './vm-io.js';
import type { VmSpec } from './vm-spec.js';

/**
 * Runs the engines other than qemu: the engine commands of a plan (xl,
 * VBoxManage). Each setup command is bounded; the run command lasts as long as
 * the guest and stops on abort.
 */

/** VBoxManage and xl setup commands finish in seconds; two minutes means the engine is stuck. */
export const DEFAULT_STEP_TIMEOUT_MS = 120_000;
/** How often to ask VirtualBox whether the VM is still running. */
export const VBOX_POLL_MS = 1_000;

export async function which(
  program: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, program);
    if (
      await access(p, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return p;
  }
  return undefined;
}

export async function requireTool(
  program: string,
  env: Readonly<Record<string, string | undefined>>,
  hint: string,
): Promise<void> {
  if (!(await which(program, env))) throw new EngineMissingError(program, hint);
}

export interface StepResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly aborted: boolean;
}

/** Runs one step. `console`: the run step gets the terminal; setup steps are captured. */
export function runStep(
  step: PlanStep,
  o: {
    signal: AbortSignal;
    console: 'inherit' | 'capture';
    timeoutMs?: number | undefined;
    onOutput?: (c: Buffer) => void;
    /** The environment to run it in (its PATH finds the program); default: this process's. */
    env?: Readonly<Record<string, string | undefined>>;
  },
): Promise<StepResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(step.program, step.args as string[], {
      stdio: o.console === 'inherit' ? 'inherit' : ['ignore', 'pipe', 'pipe'],
      env: o.env as NodeJS.ProcessEnv | undefined,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c;
      o.onOutput?.(c);
    });
    child.stderr?.on('data', (c) => {
      stderr += c;
    });
    let aborted = false;
    const stop = () => {
      aborted = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    };
    o.signal.addEventListener('abort', stop, { once: true });
    const timer = o.timeoutMs ? setTimeout(stop, o.timeoutMs) : undefined;
    child.on('error', (e: NodeJS.ErrnoException) => {
      o.signal.removeEventListener('abort', stop);
      if (timer) clearTimeout(timer);
      reject(
        e.code === 'ENOENT'
          ? new EngineMissingError(step.program, 'not installed')
          : new StoreIoError(`cannot run ${step.program}: ${e.message}`),
      );
    });
    child.on('close', (code, signal) => {
      o.signal.removeEventListener('abort', stop);
      if (timer) clearTimeout(timer);
      if (o.console === 'capture' && code !== 0 && !aborted && stderr.trim()) stdout += stderr;
      resolve({ code, signal, stdout, aborted });
    });
  });
}

/** Waits until VirtualBox reports the VM powered off (or aborted); stops it on abort. */
export async function waitForVboxPowerOff(
  vm: string,
  signal: AbortSignal,
  env?: Readonly<Record<string, string | undefined>>,
): Promise<'powered-off' | 'interrupted'> {
  for (;;) {
    if (signal.aborted) {
      await runStep(
        { program: 'VBoxManage', args: ['controlvm', vm, 'poweroff'] },
        {
          signal: new AbortController().signal,
          console: 'capture',
          env,
          timeoutMs: DEFAULT_STEP_TIMEOUT_MS,
        },
      ).catch(() => {});
      return 'interrupted';
    }
    const r = await runStep(
      { program: 'VBoxManage', args: ['showvminfo', vm, '--machinereadable'] },
      { signal, console: 'capture', timeoutMs: DEFAULT_STEP_TIMEOUT_MS, env },
    );
    const state = /^VMState="([^"]*)"/m.exec(r.stdout)?.[1];
    if (
      r.code === 0 &&
      state !== undefined &&
      !['running', 'starting', 'paused', 'stopping', 'saving', 'restoring'].includes(state)
    )
      return 'powered-off';
    if (r.code !== 0 && !signal.aborted)
      throw new StoreIoError(`VBoxManage showvminfo ${vm} failed: ${r.stdout.trim()}`);
    await sleep(VBOX_POLL_MS, undefined, { signal }).catch(() => {});
  }
}

/** Writes the xl config, runs `xl create -c` until the domain ends, then `xl destroy`. */
export async function runXen(vm: VmSpec, layout: Layout, overlay: boolean, io: VmIo): Promise<Outcome> {
  const plan = buildPlan('xen', {
    spec: vm,
    target: {
      kind: 'file',
      source: 'file',
      location: layout.rawDisk,
      name: vm.name,
      diskName: basename(layout.rawDisk),
    },
    layout,
    accel: { accel: 'kvm', reason: 'Xen', retryWithTcg: false },
    mountArgs: [],
    downloads: [],
    keepOverlay: true,
    snapshot: !overlay,
    vboxMajor: undefined,
  });
  for (const f of plan.files) await writeFile(f.path, f.content);
  const r = await runStep(plan.run, {
    signal: io.signal,
    console: io.guestConsole === 'inherit' ? 'inherit' : 'capture',
    env: io.env,
    onOutput: (c) => io.stdout.write(c),
  });
  for (const t of plan.teardown)
    await runStep(t, {
      signal: new AbortController().signal,
      console: 'capture',
      env: io.env,
      timeoutMs: 60_000,
    }).catch(() => {});
  if (io.signal.aborted || r.aborted) return 'interrupted';
  return r.code === 0 ? 'powered-off' : 'failed';
}

/** Sets the VM up, starts it headless, waits for it to power off, and always tears it down. */
export async function runVirtualBox(
  vm: VmSpec,
  rawDisk: string,
  runDir: string,
  io: VmIo,
  say: (line: string) => void,
): Promise<Outcome> {
  const version = await runStep(
    { program: VBOX, args: ['--version'] },
    { signal: io.signal, console: 'capture', env: io.env, timeoutMs: 30_000 },
  );
  const major = Number(/^(\d+)\./.exec(version.stdout.trim())?.[1]) || undefined;
  const plan = virtualBoxPlan(vm, { rawDisk, runDir, major });
  const never = new AbortController().signal;
  try {
    for (const s of plan.setup) {
      const r = await runStep(s, { signal: io.signal, console: 'capture', env: io.env, timeoutMs: 120_000 });
      if (io.signal.aborted) throw new InterruptedError('interrupted while setting up the VirtualBox VM');
      if (r.code !== 0)
        throw new StoreIoError(`${s.program} ${s.args.join(' ')} failed: ${r.stdout.trim().split('\n').pop()}`);
    }
    const started = await runStep(plan.run, { signal: io.signal, console: 'capture', env: io.env, timeoutMs: 120_000 });
    if (started.code !== 0) {
      say(`VBoxManage startvm failed: ${started.stdout.trim().split('\n').pop()}`);
      return 'failed';
    }
    say(`VirtualBox VM ${vm.name} running; its serial console is ${runDir}/serial.log`);
    return await waitForVboxPowerOff(vm.name, io.signal, io.env);
  } finally {
    for (const t of plan.teardown)
      await runStep(t, { signal: never, console: 'capture', env: io.env, timeoutMs: 60_000 }).catch(() => {});
  }
}
