import { execFile } from 'node:child_process';

/**
 * How long `systemd-notify` may take: it waits (a barrier) until systemd has
 * read the message, which is milliseconds; past this the service is better
 * left to fail its start timeout than a daemon blocked on it.
 */
const NOTIFY_TIMEOUT_MS = 5_000;

/**
 * Tells systemd a `Type=notify` service is ready, when it runs as one
 * ($NOTIFY_SOCKET set). Node cannot send on a Unix datagram socket, so the
 * message goes through `systemd-notify --ready --pid=PID`, a process of its
 * own: the unit needs `NotifyAccess=all`, and `--pid` names this process as
 * the main one. Resolves to undefined when it was sent or not asked for, or
 * to why it failed (the caller logs it; the service then fails its start
 * timeout, which says more than a crash would).
 */
export function notifySystemdReady(
  env: NodeJS.ProcessEnv,
  pid: number,
  signal?: AbortSignal,
): Promise<string | undefined> {
  if (!env.NOTIFY_SOCKET) return Promise.resolve(undefined);
  return new Promise((resolve) =>
    execFile(
      'systemd-notify',
      ['--ready', `--pid=${pid}`],
      { env, timeout: NOTIFY_TIMEOUT_MS, signal },
      (e, _stdout, stderr) =>
        resolve(e ? `could not tell systemd the service is ready: ${stderr.trim() || e.message}` : undefined),
    ),
  );
}
