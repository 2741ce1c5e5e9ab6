import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { formatProcess, parseProcess, processState, thisProcess } from '../src/cache/process-identity.js';

describe('process identity', () => {
  it('this process runs; its text form reads back', () => {
    const me = thisProcess();
    expect(me.pid).toBe(process.pid);
    expect(me.bootId).toMatch(/^[0-9a-f-]{36}$/);
    expect(me.startTime).toMatch(/^\d+$/);
    expect(processState(me)).toBe('running');
    expect(parseProcess(`${formatProcess(me)}\n`)).toEqual(me);
    expect(parseProcess('garbage')).toBeUndefined();
  });

  it('a process that exited is gone; a reused pid (another start time) is gone; another boot is an earlier boot', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    const pid = child.pid as number;
    const me = thisProcess();
    const { readFileSync } = await import('node:fs');
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] as string;
    const it = { bootId: me.bootId, pid, startTime };
    expect(processState(it)).toBe('running');
    expect(processState({ ...it, startTime: `${startTime}1` })).toBe('gone');
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(processState(it)).toBe('gone');
    expect(processState({ ...me, bootId: '00000000-0000-0000-0000-000000000000' })).toBe('earlier-boot');
  });
});
