import { execFile } from 'node:child_process';

/**
 * Runs the real `dig` (Debian bind9-dnsutils) against a test server, as a user
 * would. Bounded: one try, a 2 s timeout per query, 10 s for the process.
 */
export async function dig(
  server: { host: string; port: number },
  args: string[],
  options: { source?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = [
    `@${server.host}`,
    '-p',
    String(server.port),
    ...(options.source ? ['-b', options.source] : []),
    '+tries=1',
    '+time=2',
    ...args,
  ];
  return new Promise((resolve) => {
    execFile('dig', argv, { timeout: 10_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The header flags and status of a full dig answer, e.g. `{ status: 'NOERROR', flags: ['qr', 'aa'] }`. */
export function digHeader(stdout: string): { status: string; flags: string[] } {
  const status = /status: (\w+)/.exec(stdout)?.[1] ?? '';
  const flags = (/;; flags: ([a-z ]+);/.exec(stdout)?.[1] ?? '').trim().split(/\s+/);
  return { status, flags };
}

/** Answer-section lines of a full dig answer as [name, ttl, type, rdata]. */
export function digAnswers(stdout: string): [string, number, string, string][] {
  const section = /;; ANSWER SECTION:\n([\s\S]*?)(?:\n\n|$)/.exec(stdout)?.[1] ?? '';
  return section
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [name, ttl, , type, ...rest] = l.split(/\s+/);
      return [name as string, Number(ttl), type as string, rest.join(' ')];
    });
}
