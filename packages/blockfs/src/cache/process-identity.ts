import { readFileSync } from 'node:fs';

/**
 * One process of one boot of this machine: what a lock file or a daemon's
 * registration in a cache names, so that another process can tell whether
 * it still runs. The pid alone is not enough (pids are reused), so it comes
 * with the process's start time (clock ticks since boot, /proc/PID/stat
 * field 22) and the kernel's boot id, which changes at every boot. Linux
 * only, as FUSE here is; processes sharing a cache must share a pid
 * namespace (they see each other's pids).
 */
export interface ProcessIdentity {
  readonly bootId: string;
  readonly pid: number;
  readonly startTime: string;
}

/** Whether the process still runs, is gone, or belonged to an earlier boot (the machine went down since). */
export type ProcessState = 'running' | 'gone' | 'earlier-boot';

const PROC = '/proc';

let self: ProcessIdentity | undefined;

/** This process. */
export function thisProcess(): ProcessIdentity {
  self ??= { bootId: currentBootId(), pid: process.pid, startTime: startTimeOf(process.pid) ?? '0' };
  return self;
}

export function processState(p: ProcessIdentity): ProcessState {
  if (p.bootId !== currentBootId()) return 'earlier-boot';
  return startTimeOf(p.pid) === p.startTime ? 'running' : 'gone';
}

/** `BOOT-ID PID START-TIME`: one line of a lock file. */
export function formatProcess(p: ProcessIdentity): string {
  return `${p.bootId} ${p.pid} ${p.startTime}`;
}

/** formatProcess() read back; undefined for anything else. */
export function parseProcess(text: string): ProcessIdentity | undefined {
  const m = /^([0-9a-f-]{1,64}) ([1-9]\d{0,9}) (\d{1,20})$/.exec(text.trim());
  return m ? { bootId: m[1] as string, pid: Number(m[2]), startTime: m[3] as string } : undefined;
}

let bootId: string | undefined;

function currentBootId(): string {
  if (bootId === undefined) {
    try {
      bootId = readFileSync(`${PROC}/sys/kernel/random/boot_id`, 'latin1').trim();
    } catch {
      bootId = '0'; // no /proc: every process looks like one of this boot, and liveness rests on pid and start time
    }
  }
  return bootId;
}

/** Field 22 of /proc/PID/stat; undefined when there is no such process. */
function startTimeOf(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`${PROC}/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** Whether a process with this pid runs (a zombie waiting for its parent has exited: it does not). */
export function isRunning(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`${PROC}/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  return state !== 'Z' && state !== 'X';
}
