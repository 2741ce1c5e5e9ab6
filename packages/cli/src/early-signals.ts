/**
 * Catching SIGINT/SIGTERM from a command's first instant. Loading a command's
 * modules takes a few hundred milliseconds on a busy machine, and a signal
 * then killed the process by Node's default action: no message, no clean-up
 * (`thfc-mirror sync` stopped in its first second said nothing). Each bin
 * entry calls holdSignals() before it loads anything else; the command's own
 * handlers, once installed, take over what was held with releaseHeldSignals().
 *
 * The `@thfc/cli/early-signals` entry: it imports nothing, so it loads at once.
 */
const held: NodeJS.Signals[] = [];
const hold = (sig: NodeJS.Signals) => {
  held.push(sig);
};
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Notes each SIGINT/SIGTERM instead of dying of it, until releaseHeldSignals(). */
export function holdSignals(): void {
  for (const sig of SIGNALS) process.on(sig, hold);
}

/** Stops holding and returns the signals noted so far, oldest first, for the real handlers to act on. */
export function releaseHeldSignals(): NodeJS.Signals[] {
  for (const sig of SIGNALS) process.off(sig, hold);
  return held.splice(0);
}
