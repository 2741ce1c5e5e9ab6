import type { Writable } from 'node:stream';

/**
 * Resolves when a writable whose buffer is full drains, or when it closes
 * (its reader went away); at once when it is closed already or not full. Both listeners go once either fires: one left
 * behind per full buffer would pile up over a long body.
 */
export function drainedOrClosed(out: Writable): Promise<void> {
  // Already closed, or nothing to wait for: no event would ever come.
  if (out.destroyed || !out.writableNeedDrain) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
  });
}
