import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineMissingError } from '../src/errors.js';
import { DEFAULT_QEMU_TOOLS, qemuImg, qemuVersion, runQemu } from '../src/qemu.js';
import { script, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());
const never = new AbortController().signal;
const fake = async (name: string, body: string) => ({ system: await script(join(dir, name), body), img: 'qemu-img' });
const opts = { signal: never, stdin: 'ignore', stdout: 'pipe' } as const;

describe('runQemu', () => {
  it('reports the exit status and what was printed', async () => {
    const tools = await fake('q1', 'echo out; echo err >&2; exit 3');
    const errs: string[] = [];
    const x = await runQemu(tools, [], { ...opts, onStderr: (c) => errs.push(c.toString()) });
    expect(x).toMatchObject({ code: 3, signal: null, stoppedBy: undefined, stdout: 'out\n', stderr: 'err\n' });
    expect(errs.join('')).toBe('err\n');
  });

  it('stopWhen stops it (qemu waits forever after "KVM internal error")', async () => {
    const tools = await fake('q2', "echo 'KVM internal error. Suberror: 1' >&2; exec sleep 30");
    const t = Date.now();
    const x = await runQemu(tools, [], { ...opts, stopWhen: ({ stderr }) => stderr.includes('KVM internal error') });
    expect(x.stoppedBy).toBe('stop-when');
    expect(x.signal).toBe('SIGTERM');
    expect(Date.now() - t).toBeLessThan(5_000);
  });

  it('an abort stops it with SIGTERM, then SIGKILL if it ignores that', async () => {
    const tools = await fake('q3', "trap '' TERM; echo ready; while :; do sleep 0.05; done");
    const ac = new AbortController();
    const x = runQemu(tools, [], {
      ...opts,
      signal: ac.signal,
      stopGraceMs: 300,
      onStdout: () => ac.abort(),
    });
    expect(await x).toMatchObject({ stoppedBy: 'abort', signal: 'SIGKILL' });
  });

  it('a timeout bounds it; an already aborted run does not start', async () => {
    const tools = await fake('q4', 'exec sleep 30');
    expect((await runQemu(tools, [], { ...opts, timeoutMs: 200 })).stoppedBy).toBe('timeout');
    const ac = new AbortController();
    ac.abort();
    expect((await runQemu(tools, [], { ...opts, signal: ac.signal })).stoppedBy).toBe('abort');
  });

  it('a grandchild holding the output pipe does not hold the result', async () => {
    const tools = await fake('q5', '(sleep 30 &) ; exit 0');
    const t = Date.now();
    expect((await runQemu(tools, [], opts)).code).toBe(0);
    expect(Date.now() - t).toBeLessThan(5_000);
  });

  it('no qemu installed: EngineMissingError naming the package', async () => {
    await expect(runQemu({ system: join(dir, 'absent'), img: 'x' }, [], opts)).rejects.toThrow(EngineMissingError);
    await expect(runQemu({ system: join(dir, 'absent'), img: 'x' }, [], opts)).rejects.toThrow(/qemu-system-x86/);
  });
});

describe('qemu-img and --version', () => {
  it('reads the real qemu version line', async () => {
    expect(await qemuVersion(DEFAULT_QEMU_TOOLS, never)).toMatch(/^QEMU emulator version \d+\.\d+/);
  });
  it('a failing qemu-img is an I/O error quoting its message; a missing one names the package', async () => {
    await expect(qemuImg(DEFAULT_QEMU_TOOLS, ['info', join(dir, 'none.qcow2')], never)).rejects.toThrow(
      /qemu-img info.*exit 1.*none\.qcow2/,
    );
    await expect(qemuImg({ system: 'x', img: join(dir, 'absent') }, ['info'], never)).rejects.toThrow(/qemu-utils/);
  });
});
