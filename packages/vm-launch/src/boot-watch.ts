import { open, stat } from 'node:fs/promises';

/**
 * The boot timeout's two checks: a disk with nothing a BIOS would boot, and
 * a guest that never says a word on its serial console.
 */

/**
 * Five minutes: a cold first boot over a slow link under TCG takes one or
 * two; a guest silent for five has found nothing to boot (a text file, a disk
 * without a kernel), where qemu would otherwise wait for ever.
 */
export const DEFAULT_BOOT_TIMEOUT_SECONDS = 300;
/** How often the console log is looked at: a timeout is minutes, a second late is nothing. */
const POLL_MS = 1_000;

/** A PC boot sector ends in 0x55 0xAA at bytes 510-511 (an MBR, or a GPT's protective MBR). */
export function hasBootSignature(firstSector: Uint8Array): boolean {
  return firstSector.length >= 512 && firstSector[510] === 0x55 && firstSector[511] === 0xaa;
}

/** Reads the disk's first 512 bytes (a raw file or the image on its mount); undefined when it cannot be read. */
export async function readsBootSector(path: string): Promise<boolean | undefined> {
  try {
    const fh = await open(path, 'r');
    try {
      const b = Buffer.alloc(512);
      const { bytesRead } = await fh.read(b, 0, 512, 0);
      return hasBootSignature(b.subarray(0, bytesRead));
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * Aborts the returned signal when `consoleLog` is still empty `timeoutMs`
 * after the start: the guest has written nothing to its console. It only
 * watches until the first byte: a guest that booted and sits at its login
 * prompt is silent too, and must not be stopped. stop() ends the watch.
 */
export function watchFirstConsoleOutput(
  consoleLog: string,
  timeoutMs: number,
  signal: AbortSignal,
): { timedOut: AbortSignal; stop(): void } {
  const controller = new AbortController();
  const end = Date.now() + timeoutMs;
  const timer = setInterval(
    () => {
      void stat(consoleLog)
        .then(
          (s) => s.size,
          () => 0,
        )
        .then((size) => {
          if (size > 0) clearInterval(timer);
          else if (Date.now() >= end) {
            clearInterval(timer);
            controller.abort();
          }
        });
    },
    Math.min(POLL_MS, timeoutMs),
  );
  const stop = () => clearInterval(timer);
  signal.addEventListener('abort', stop, { once: true });
  return { timedOut: controller.signal, stop };
}
