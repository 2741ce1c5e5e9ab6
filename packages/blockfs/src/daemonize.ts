import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Starting a daemon in the background and waiting for its report. It imports
 * node's own modules only: `httpstorged nbd` (without -f) comes here straight
 * from the bin entry, so the daemon starts before the command has loaded its
 * option parser and the formats (see nbdFastStart).
 */

export const DEFAULT_LOG = '/var/tmp/httpstorged.log';

/** The exit codes of @thfc/format's EXIT this file uses, without loading it. */
const EXIT_OK = 0;
const EXIT_USAGE = 2;
const EXIT_IO = 5;
const EXIT_SOFTWARE = 70;

/**
 * Node flags of the background daemon. `--max-semi-space-size=8` caps V8's
 * young generation at 2 × 8 MiB instead of Node 20's 2 × 16 MiB: a cold read
 * allocates fast and briefly (promises, request objects), so the young
 * generation grows to its cap and both halves stay resident. Measured on the
 * cold loopback read of the bench image: new space 32 → 16 MiB, the rest of
 * the heap ~16 MiB either way, and no CPU cost seen (the scavenges copy little:
 * what a block read allocates dies with it). 16 MiB off a peak RSS of 150-200 MB
 * (issue 12, T6's 200 MB budget). A daemon run in the foreground takes Node's
 * defaults; NODE_OPTIONS can set the same.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

const CLI = fileURLToPath(new URL('./cli.js', import.meta.url));

/**
 * Starts the daemon in the background and waits until it reports the mount
 * (or export) ready (an export says where: `serving at SOCKET`), or why it could not: that reason, as the daemon gave it,
 * is printed here in one line and its exit code returned.
 */
export async function daemonize(
  argv: string[],
  logFile: string,
  how: { sub?: string; done: string } = { done: 'mounted' },
): Promise<number> {
  let log: number;
  try {
    log = openSync(logFile, 'a', 0o644);
  } catch (e) {
    process.stderr.write(
      `httpstorged: cannot open log file ${logFile}: ${(e as Error).message} (choose one with --log)\n`,
    );
    return EXIT_USAGE;
  }
  // A mount daemon writes its log itself (so SIGHUP can reopen it); its stdout and stderr catch what Node prints on
  // a crash (and an NBD daemon's log lines).
  const sub = how.sub ? [how.sub] : [];
  const child = spawn(
    process.execPath,
    [...DAEMON_NODE_FLAGS, CLI, ...sub, '-f', '--ready-fd', '3', '--log', logFile, ...argv],
    {
      detached: true,
      stdio: ['ignore', log, log, 'pipe'],
    },
  );
  const pipe = child.stdio[3] as NodeJS.ReadableStream;
  let text = '';
  pipe.on('data', (c) => {
    text += c;
  });
  const outcome = await new Promise<
    { ok: boolean; code?: number; message?: string; pid?: number; at?: string } | undefined
  >((res) => {
    pipe.on('end', () => {
      try {
        res(JSON.parse(text));
      } catch {
        res(undefined);
      }
    });
    child.on('exit', () => setTimeout(() => res(undefined), 100));
  });
  if (outcome?.ok) {
    child.unref();
    (pipe as unknown as { destroy(): void }).destroy();
    const done = outcome.at ? `${how.done} at ${outcome.at}` : how.done;
    process.stdout.write(`httpstorged: ${done} (daemon pid ${outcome.pid}, log ${logFile})\n`);
    return EXIT_OK;
  }
  if (outcome) {
    process.stderr.write(`httpstorged: ${outcome.message}\n`);
    return outcome.code ?? EXIT_SOFTWARE;
  }
  process.stderr.write(`httpstorged: the daemon exited before it was ready; see ${logFile}\n`);
  return EXIT_IO;
}

/**
 * `httpstorged nbd` to run in the background, with no help asked: the
 * arguments to hand to its daemon as they are, and the log file; undefined
 * for anything else (the full command parses it). The daemon parses the
 * arguments itself and reports a mistake through --ready-fd, so the command
 * need not load the option parser first: it only waits. ~0.1-0.2 s of a
 * start (a Node process loading commander and @thfc/format before it spawns).
 */
export function nbdFastStart(argv: readonly string[]): { args: string[]; log: string } | undefined {
  if (argv[0] !== 'nbd') return undefined;
  const args = argv.slice(1);
  let log = DEFAULT_LOG;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--' || a === '--foreground' || a === '--help' || a.startsWith('--ready-fd')) return undefined;
    // -f, -h, or a cluster of short flags with either (-vf): the full command decides.
    if (/^-[^-]/.test(a) && /[fhV]/.test(a.slice(1))) return undefined;
    if (a === '--log') {
      const v = args[i + 1];
      if (v === undefined) return undefined;
      log = v;
      i++;
    } else if (a.startsWith('--log=')) log = a.slice('--log='.length);
  }
  return { args, log };
}
