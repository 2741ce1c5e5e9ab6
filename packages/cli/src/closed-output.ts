/**
 * A reader that goes away (`thfc-pack inspect x.idx | head -1`, a pager
 * quit early) must not crash a command with a stack trace, as Node does by
 * default: an EPIPE on stdout or stderr is an unhandled 'error' event. With
 * this, writes to a closed stdout or stderr are dropped and the command goes
 * on to finish as it would have (its cleanup included: a mount is unmounted,
 * a guest stopped), exiting with its own status. Any other stream error is
 * still thrown. For CLI entry points only; calling it again does nothing.
 */
export function ignoreClosedOutput(): void {
  if (installed) return;
  installed = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  }
}

let installed = false;
