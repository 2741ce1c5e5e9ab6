import type { AccelChoice } from './accel.js';
import { watchFirstConsoleOutput } from './boot-watch.js';
import type { Outcome } from './exit-codes.js';
import type { KvmProbe, ProbeResult } from './kvm-probe.js';
import { type QemuExit, runQemu } from './qemu.js';
import { isKvmFailure, kvmFailureLine, qemuArgs } from './qemu-args.js';
import type { VmIo } from './vm-io.js';
import type { VmSpec } from './vm-spec.js';

/**
 * Runs the guest under qemu until it stops, and tells how it ended. A KVM
 * chosen automatically that fails at run time is reported in one line and the
 * guest is run again under TCG on a fresh overlay.
 */
export async function runGuest(
  vm: VmSpec,
  choice: AccelChoice,
  probed: ProbeResult | undefined,
  probe: KvmProbe,
  io: VmIo,
  say: (line: string) => void,
  freshOverlay: () => Promise<void>,
  /** Stop the guest when its console (vm.consoleLog) is still empty after this long; 0 or absent: never. */
  bootTimeoutMs?: number,
): Promise<{ outcome: Outcome; exit: QemuExit; fallback?: string; explained: boolean; bootTimedOut: boolean }> {
  let bootTimedOut = false;
  const once = async (spec: VmSpec) => {
    const exit = await runOnce(spec, io, bootTimeoutMs);
    if (exit.stoppedBy === 'timeout') bootTimedOut = true;
    return exit;
  };
  let exit = await once(vm);
  let fallback: string | undefined;
  let explained = false;
  if (vm.accel === 'kvm' && !io.signal.aborted && failed(exit) && isKvmFailure(exit.stderr)) {
    const why = kvmFailureLine(exit.stderr) ?? 'KVM error';
    if (choice.retryWithTcg) {
      fallback = why;
      say(`KVM failed at run time (${why}); retrying with TCG`);
      if (probed) await probe.recordRunTimeFailure(probed, why).catch(() => {});
      await freshOverlay();
      exit = await once({ ...vm, accel: 'tcg' });
    } else {
      say(`KVM failed (${why}); --no-kvm runs the guest under TCG`);
      explained = true;
    }
  }
  const outcome: Outcome =
    io.signal.aborted || exit.stoppedBy === 'abort' ? 'interrupted' : failed(exit) ? 'failed' : 'powered-off';
  return { outcome, exit, fallback, explained, bootTimedOut };
}

/** Whether qemu's run failed: stopped by us for a KVM failure or the boot timeout, or exited non-zero unasked. */
function failed(x: QemuExit): boolean {
  return x.stoppedBy === 'stop-when' || x.stoppedBy === 'timeout' || (x.stoppedBy !== 'abort' && x.code !== 0);
}

/** One run of qemu on `spec`, its boot watched when a boot timeout is given. */
async function runOnce(spec: VmSpec, io: VmIo, bootTimeoutMs: number | undefined): Promise<QemuExit> {
  const watch =
    spec.consoleLog !== undefined && bootTimeoutMs
      ? watchFirstConsoleOutput(spec.consoleLog, bootTimeoutMs, io.signal)
      : undefined;
  const kvmStderr = spec.accel === 'kvm' ? untilKvmFailure(io.stderr) : undefined;
  const exit = await runQemu(io.tools, qemuArgs(spec), {
    signal: io.signal,
    stdin: io.guestConsole === 'inherit' ? 'inherit' : 'ignore',
    stdout: io.guestConsole === 'inherit' ? 'inherit' : 'pipe',
    onStdout: (c) => io.stdout.write(c),
    onStderr: (c) => (kvmStderr ? kvmStderr.write(c.toString('utf8')) : io.stderr.write(c)),
    // After "KVM internal error" qemu stops the guest and waits forever.
    stopWhen: spec.accel === 'kvm' ? ({ stderr }) => /KVM internal error/.test(stderr) : undefined,
    timeoutSignal: watch?.timedOut,
  });
  watch?.stop();
  kvmStderr?.end();
  return exit;
}

/**
 * Under KVM, qemu's stderr is passed on line by line and stops at a KVM failure, which runGuest then reports in
 * one line instead of qemu's register dump. (Under TCG it is passed on as it comes.)
 */
function untilKvmFailure(out: VmIo['stderr']): { write(text: string): void; end(): void } {
  let partial = '';
  let hiding = false;
  return {
    write(text) {
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!hiding && isKvmFailure(line)) hiding = true;
        if (!hiding) out.write(`${line}\n`);
      }
    },
    end() {
      if (partial && !hiding && !isKvmFailure(partial)) out.write(`${partial}\n`);
    },
  };
}
