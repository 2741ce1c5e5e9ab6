#!/usr/bin/env node
// The command's entry: signals are held from here, before its modules load (see @thfc/cli/early-signals).
import { ignoreClosedOutput } from '@thfc/cli/closed-output';
import { holdSignals, releaseHeldSignals } from '@thfc/cli/early-signals';

holdSignals();
// `httpstorged nbd` in the background: the daemon starts now, and this process only waits for its report.
const { daemonize, nbdFastStart } = await import('./daemonize.js');
const fast = nbdFastStart(process.argv.slice(2));
if (fast) {
  ignoreClosedOutput(); // as cli.ts does: `httpstorged nbd … | head -0` must not die of EPIPE
  const interrupted = (sig: NodeJS.Signals) => {
    process.stderr.write(`httpstorged: interrupted by ${sig}\n`);
    process.exit(130); // EXIT.INTERRUPTED; the daemon, started apart, goes on
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, interrupted);
  for (const sig of releaseHeldSignals()) interrupted(sig);
  process.exitCode = await daemonize(fast.args, fast.log, { sub: 'nbd', done: 'serving' });
} else await import('./cli.js');
