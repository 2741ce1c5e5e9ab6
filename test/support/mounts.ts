import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, execFileP, node, type Run, run } from './processes.js';

/** A daemon-mode httpstorged mount for a test, with its own cache and log; always cleaned up. */
export class TestMount {
  constructor(
    readonly mountpoint: string,
    readonly log: string,
  ) {}

  /** Mounts in the background (the default mode) and resolves with the CLI's result. */
  static async start(mountpoint: string, log: string, args: string[]): Promise<{ mount: TestMount; result: Run }> {
    const result = await node(BIN.httpstorged, [mountpoint, ...args, '--log', log], { timeoutMs: 60_000 });
    return { mount: new TestMount(mountpoint, log), result };
  }

  async stats(): Promise<{ pid: number; images: Record<string, number | string | unknown[]>[] }> {
    const r = await node(BIN.httpstorged, ['stats', this.mountpoint, '--json'], { timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`stats: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  async logText(): Promise<string> {
    return readFile(this.log, 'utf8').catch(() => '');
  }

  /** Unmounts through the CLI; falls back to a lazy detach so a failed test never leaves a mount behind. */
  async stop(): Promise<Run> {
    const r = await node(BIN.httpstorged, ['umount', this.mountpoint], { timeoutMs: 20_000 });
    await execFileP('fusermount', ['-u', '-z', this.mountpoint]).catch(() => {});
    return r;
  }
}

export async function isMounted(mountpoint: string): Promise<boolean> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[4] === mountpoint);
}

/** Reads [offset, offset+length) of a file from a child process; resolves to the bytes, or the error text. */
export async function readRange(
  path: string,
  offset: number,
  length: number,
): Promise<{ ok: true; bytes: Buffer } | { ok: false; error: string }> {
  const script = `const fs=require('fs');const fd=fs.openSync(process.argv[1],'r');const b=Buffer.alloc(+process.argv[3]);let n=0;try{while(n<b.length){const r=fs.readSync(fd,b,n,b.length-n,+process.argv[2]+n);if(!r)break;n+=r}process.stdout.write(b.subarray(0,n).toString('base64'))}catch(e){process.stderr.write(e.code||e.message);process.exit(1)}`;
  const r = await run(process.execPath, ['-e', script, path, String(offset), String(length)], { timeoutMs: 120_000 });
  return r.code === 0 ? { ok: true, bytes: Buffer.from(r.stdout, 'base64') } : { ok: false, error: r.stderr.trim() };
}

export { join };
