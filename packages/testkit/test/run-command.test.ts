import { describe, expect, it } from 'vitest';
import { runCommand } from '../src/run-command.js';

const script = (body: string) => [process.execPath, ['-e', body]] as const;

describe('runCommand', () => {
  it('gives back the status and both outputs, and never throws on a non-zero exit', async () => {
    const r = await runCommand(...script('process.stdout.write("out"); process.stderr.write("err"); process.exit(3)'));
    expect([r.code, r.signal, r.stdout, r.stderr]).toEqual([3, null, 'out', 'err']);
    expect(r.ms).toBeGreaterThanOrEqual(0);
  });

  it('feeds input to stdin and closes it; without input stdin is closed at once', async () => {
    const echo = 'process.stdin.pipe(process.stdout)';
    expect((await runCommand(...script(echo), { input: 'abc' })).stdout).toBe('abc');
    expect((await runCommand(...script(echo), { timeoutMs: 10_000 })).stdout).toBe('');
  });

  it('adds env to the environment and runs in cwd', async () => {
    const r = await runCommand(...script('console.log(process.env.THFC_X, process.cwd())'), {
      env: { THFC_X: 'y' },
      cwd: '/',
    });
    expect(r.stdout).toBe('y /\n');
  });

  it('kills a command past its timeout', async () => {
    const r = await runCommand(...script('setTimeout(() => {}, 60_000)'), { timeoutMs: 200 });
    expect([r.code, r.signal]).toEqual([null, 'SIGKILL']);
  });

  it('rejects a command that cannot be started', async () => {
    await expect(runCommand('/nonexistent/thfc-command', [])).rejects.toThrow(/ENOENT/);
  });
});
