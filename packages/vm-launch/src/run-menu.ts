import { createInterface } from 'node:readline';
import { InterruptedError, UsageError } from '@thfc/format';
import { type BootOptions, type BootResult, runBoot } from './boot.js';
import type { ResolvedEntry } from './catalog.js';
import { loadCatalog } from './load-catalog.js';
import { initialMenu, menuStep, parseKeys, renderList, renderMenu } from './menu.js';
import type { VmIo } from './vm-io.js';

/**
 * `thfc-vm menu [CATALOG]` (and httpfuse-kvm / httpfuse-qemu): the
 * original's "Selection Menu of OS". On a terminal: arrow keys or a number,
 * Enter boots, q quits. Otherwise it prints the list and reads one line (a
 * number or a name) from stdin, so it can be scripted. The choice is booted
 * with the given boot options.
 */

export const MENU_TITLE = 'thfc-vm: Selection Menu of OS';

export interface MenuOptions {
  readonly catalog: string;
  /** How to boot the chosen entry (image is filled in). */
  readonly boot: Omit<BootOptions, 'image' | 'entry' | 'catalog'>;
  /** Shown in the footer: "auto", "TCG forced". */
  readonly accelLabel: string;
  readonly columns?: number | undefined;
}

export type MenuResult = { readonly chosen: undefined } | { readonly chosen: ResolvedEntry; readonly boot: BootResult };

export async function runMenu(o: MenuOptions, io: VmIo): Promise<MenuResult> {
  const { href, entries } = await loadCatalog(o.catalog, { cwd: io.cwd, signal: io.signal });
  const chosen =
    io.stdinIsTty && io.setRawMode ? await chooseOnTerminal(entries, href, o, io) : await chooseFromLine(entries, io);
  if (!chosen) {
    io.stderr.write('thfc-vm: nothing chosen\n');
    return { chosen: undefined };
  }
  io.stderr.write(`thfc-vm: booting ${chosen.name}${chosen.description ? ` (${chosen.description})` : ''}\n`);
  const boot = await runBoot({ ...o.boot, image: chosen.name, entry: chosen }, io);
  return { chosen, boot };
}

function chooseOnTerminal(
  entries: ResolvedEntry[],
  href: string,
  o: MenuOptions,
  io: VmIo,
): Promise<ResolvedEntry | undefined> {
  const setRaw = io.setRawMode as (raw: boolean) => void;
  let state = initialMenu(entries.length);
  const draw = () =>
    io.stdout.write(
      renderMenu(entries, state, {
        title: MENU_TITLE,
        source: href,
        footer: `Up/Down or a number, Enter to boot, q to quit   accelerator: ${o.accelLabel}`,
        columns: o.columns ?? 80,
      }),
    );
  return new Promise((resolve, reject) => {
    const finish = (entry: ResolvedEntry | undefined, error?: Error) => {
      io.stdin.removeListener('data', onData);
      io.signal.removeEventListener('abort', onAbort);
      setRaw(false);
      // Stop reading: the terminal belongs to the guest's console from here on.
      io.stdin.pause();
      io.stdout.write('\x1b[H\x1b[2J');
      if (error) reject(error);
      else resolve(entry);
    };
    const onData = (chunk: Buffer | string) => {
      for (const key of parseKeys(chunk.toString())) {
        const step = menuStep(state, key);
        state = step.state;
        if (step.quit) return finish(undefined);
        if (step.choose !== undefined) return finish(entries[step.choose]);
      }
      draw();
    };
    const onAbort = () => finish(undefined, new InterruptedError('interrupted at the menu'));
    io.signal.addEventListener('abort', onAbort, { once: true });
    setRaw(true);
    io.stdin.on('data', onData);
    io.stdin.resume();
    draw();
  });
}

async function chooseFromLine(entries: ResolvedEntry[], io: VmIo): Promise<ResolvedEntry | undefined> {
  io.stdout.write(renderList(entries.map((e) => ({ name: e.name, description: e.description, index: e.indexUrl }))));
  io.stdout.write(`boot which? [1-${entries.length}, name, q]: `);
  const rl = createInterface({ input: io.stdin, terminal: false });
  const line = await new Promise<string | undefined>((resolve) => {
    rl.once('line', (l) => resolve(l));
    rl.once('close', () => resolve(undefined));
    io.signal.addEventListener('abort', () => resolve(undefined), { once: true });
  });
  rl.close();
  io.stdout.write('\n');
  io.signal.throwIfAborted();
  const answer = line?.trim() ?? '';
  if (answer === '' || answer === 'q') return undefined;
  const n = Number(answer);
  const entry = Number.isInteger(n) ? entries[n - 1] : entries.find((e) => e.name === answer);
  if (!entry) throw new UsageError(`no entry "${answer}": answer 1-${entries.length} or a name`);
  return entry;
}
