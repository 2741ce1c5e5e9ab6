import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
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

/**
 * A child process holding a file open (a guest's disk, a held descriptor):
 * it reads through that same descriptor on request, so a test can see what a
 * user of a mount sees across an unmount attempt.
 */
export class FileHolder {
  private buffered = '';
  private waiting: ((line: string) => void)[] = [];

  private constructor(private readonly child: ChildProcess) {
    child.stdout?.on('data', (c) => {
      this.buffered += c;
      for (let i = this.buffered.indexOf('\n'); i >= 0; i = this.buffered.indexOf('\n')) {
        const line = this.buffered.slice(0, i);
        this.buffered = this.buffered.slice(i + 1);
        this.waiting.shift()?.(line);
      }
    });
  }

  static async open(path: string): Promise<FileHolder> {
    const script = `const fs=require('fs');const fd=fs.openSync(process.argv[1],'r');console.log('open');require('readline').createInterface({input:process.stdin}).on('line',(l)=>{const [o,n]=l.split(' ').map(Number);const b=Buffer.alloc(n);try{const r=fs.readSync(fd,b,0,n,o);console.log(b.subarray(0,r).toString('base64'))}catch(e){console.log('!'+(e.code||e.message))}})`;
    const holder = new FileHolder(
      spawn(process.execPath, ['-e', script, path], { stdio: ['pipe', 'pipe', 'inherit'] }),
    );
    const first = await holder.line();
    if (first !== 'open') throw new Error(`holder of ${path}: ${first}`);
    return holder;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  private line(): Promise<string> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Reads through the held descriptor: the bytes, or the error code (EIO, ENOTCONN…). */
  async read(offset: number, length: number): Promise<{ ok: true; bytes: Buffer } | { ok: false; error: string }> {
    const answer = this.line();
    this.child.stdin?.write(`${offset} ${length}\n`);
    const l = await answer;
    return l.startsWith('!') ? { ok: false, error: l.slice(1) } : { ok: true, bytes: Buffer.from(l, 'base64') };
  }

  /** Closes the descriptor (the process exits). */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}
