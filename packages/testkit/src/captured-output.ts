import { PassThrough } from 'node:stream';

/** A command's stdout and stderr as streams it writes to, and what it wrote so far as text. */
export interface CapturedOutput {
  readonly stdout: PassThrough;
  readonly stderr: PassThrough;
  /** Everything written to stdout so far, as UTF-8. */
  out(): string;
  /** Everything written to stderr so far, as UTF-8. */
  err(): string;
}

/** The output half of a test's CommandIo (or VmIo): two streams that keep what is written to them. */
export function capturedOutput(): CapturedOutput {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  return {
    stdout,
    stderr,
    out: () => Buffer.concat(out).toString('utf8'),
    err: () => Buffer.concat(err).toString('utf8'),
  };
}
