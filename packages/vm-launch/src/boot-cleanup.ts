import type { Stats } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { decodeProfile } from '@thfc/format';
import { isMounted } from '@thfc/store';
import type { BootReport } from './boot.js';
import type { Layout } from './boot-plan.js';
import type { HttpstorgedMount } from './httpstorged.js';
import { HttpstorgedNbd } from './httpstorged-nbd.js';
import { removeOverlay } from './overlay.js';

/** What a boot has created so far: all that cleanUpRun removes (or keeps, as asked). */
export interface BootRun {
  readonly runDir: string;
  readonly layout: Layout;
  mount: HttpstorgedMount | HttpstorgedNbd | undefined;
  overlayMade: boolean;
  /** --record-profile, absolute. */
  readonly recordPath: string | undefined;
  /** What was at the --record-profile path before: a file still like it afterwards is not this run's recording. */
  readonly recordBefore: Stats | undefined;
}

/**
 * Removes what the run created and says what the mount fetched. It runs
 * after an abort too, so it takes no abort signal; each step is bounded on
 * its own. A step that fails is a cleanup problem in REPORT, not an error.
 */
export async function cleanUpRun(
  run: BootRun,
  keepOverlay: boolean,
  report: BootReport,
  say: (line: string) => void,
): Promise<void> {
  const { mount, layout, runDir, recordPath } = run;
  const problem = (p: string) => {
    report.cleanup.clean = false;
    report.cleanup.problems.push(p);
    say(`cleanup: ${p}`);
  };
  if (mount) {
    report.mount = await mount.stats(new AbortController().signal).catch(() => undefined);
    if (report.mount) sayMountStats(report.mount, say);
  }
  if (run.overlayMade) {
    if (keepOverlay) {
      report.overlayKept = layout.overlay;
      say(`overlay kept: ${layout.overlay} (backing file ${report.disk})`);
    } else await removeOverlay(layout.overlay).catch((e) => problem(`cannot remove ${layout.overlay}: ${e.message}`));
  }
  if (mount && !(await mount.stop()))
    problem(
      mount instanceof HttpstorgedNbd
        ? 'httpstorged nbd did not stop cleanly; it was killed'
        : `httpstorged did not stop cleanly; ${layout.mountpoint} was detached`,
    );
  // httpstorged writes the profile as it unmounts, so it can only be read now.
  if (mount && recordPath !== undefined) {
    const recorded = await readRecordedProfile(recordPath, run.recordBefore);
    if (typeof recorded === 'string') {
      const why = await mount.lastMessage();
      problem(`${recorded}${why ? ` (httpstorged: ${why})` : ''}`);
    } else {
      report.profile = recorded;
      say(`recorded a boot profile of ${recorded.blocks} blocks to ${recordPath} (publish: thfc-pack profile add)`);
    }
  }
  if (await isMounted(layout.mountpoint).catch(() => false)) problem(`${layout.mountpoint} is still mounted`);
  else
    await rm(runDir, { recursive: true, force: true }).catch((e) => problem(`cannot remove ${runDir}: ${e.message}`));
}

function sayMountStats(s: NonNullable<BootReport['mount']>, say: (line: string) => void): void {
  say(
    `${s.name}: fetched ${mib(s.bytesDownloaded)} (${s.blocksFetched} blocks) for ${mib(s.bytesRead)} read by the guest, of a ${mib(s.size)} image`,
  );
  const p = s.prefetch;
  if (p)
    say(
      `${s.name}: boot profile of ${p.blocks} blocks from ${p.source}: ${p.hit} hit, ${p.wasted} fetched but unused, ${p.pending} not fetched${p.failed ? `, ${p.failed} failed` : ''}`,
    );
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/** The profile httpstorged wrote at unmount: its size, or why there is none (a cleanup problem). */
async function readRecordedProfile(
  path: string,
  before: Stats | undefined,
): Promise<{ recorded: string; blocks: number } | string> {
  const st = await stat(path).catch(() => undefined);
  // httpstorged writes it through a temp file and a rename: a new inode.
  if (!st || (before && st.ino === before.ino && st.mtimeMs === before.mtimeMs))
    return `httpstorged wrote no boot profile to ${path}`;
  try {
    return { recorded: path, blocks: decodeProfile(await readFile(path), path).blocks.length };
  } catch (e) {
    return `the boot profile ${path} is unreadable: ${(e as Error).message}`;
  }
}
