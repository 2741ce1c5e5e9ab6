import { EXIT, InterruptedError } from '@thfc/format';
import type { CommandIo } from './command-io.js';
import { releaseHeldSignals } from './early-signals.js';

/**
 * The process side shared by the thfc command tables (thfc-pack, thfc-mirror):
 * the first SIGINT/SIGTERM aborts the commands' signal so they stop cleanly
 * (exit 130, EXIT.INTERRUPTED, whatever the command), a second one exits at
 * once (errors become one line and an exit code in reportError).
 * Only CLI entry points import this file.
 */
export function processShell(): { signal: AbortSignal; io(json: boolean): CommandIo } {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++interrupts > 1) process.exit(EXIT.INTERRUPTED);
    controller.abort(new InterruptedError(`interrupted by ${sig}`));
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, onSignal);
  // A signal that came while the command loaded (held by its bin entry) stops it now, before any work.
  for (const sig of releaseHeldSignals()) onSignal(sig);
  return {
    signal: controller.signal,
    io: (json) => ({
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      signal: controller.signal,
      progress: json ? false : process.stderr.isTTY === true ? true : 'lines',
      env: process.env,
    }),
  };
}
