import { describe, expect, it } from 'vitest';
import { formatDuration } from '../src/human-units.js';
import { describeProgress, ProgressLines, progressInterval } from '../src/progress.js';

function sink() {
  const out = {
    text: '',
    write(s: string) {
      out.text += s;
      return true;
    },
  };
  return out;
}

describe('progress', () => {
  it('an ETA always has a unit: seconds, minutes and seconds, hours and minutes', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(42.4)).toBe('42s');
    expect(formatDuration(185)).toBe('3m05s');
    expect(formatDuration(2 * 3600 + 7 * 60 + 30)).toBe('2h07m');
    expect(describeProgress(25 * 2 ** 20, 100 * 2 ** 20, 10)).toBe('25% 25.0 MiB/100 MiB 2.6 MB/s ETA 30s');
    expect(describeProgress(0, 100, 1)).toMatch(/ETA -$/);
    expect(describeProgress(5 * 2 ** 20, undefined, 2)).toBe('5.00 MiB 2.6 MB/s');
  });

  it('on a non-TTY: one line per interval, none for work done sooner, and a last line only after others', () => {
    let now = 1_000;
    const out = sink();
    const p = new ProgressLines(
      out as unknown as NodeJS.WritableStream,
      'pack debian',
      100 * 2 ** 20,
      5_000,
      () => now,
    );
    for (let t = 0; t <= 12_000; t += 500) {
      now = 1_000 + t;
      p.update((t / 12_000) * 60 * 2 ** 20);
    }
    p.finish();
    const lines = out.text.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^pack debian: 25% 25\.0 MiB\/100 MiB 5\.2 MB\/s ETA 15s$/);
    expect(lines[1]).toMatch(/^pack debian: 50% 50\.0 MiB\/100 MiB .* ETA 10s$/);
    expect(lines[2]).toBe('pack debian: done, 60.0 MiB in 12s (5.2 MB/s)');

    const quick = sink();
    const q = new ProgressLines(quick as unknown as NodeJS.WritableStream, 'verify', 10, 5_000, () => now);
    q.update(10);
    q.finish();
    expect(quick.text).toBe('');
  });

  it('THFC_PROGRESS_SECONDS sets the interval; anything but a positive number leaves the default', () => {
    expect(progressInterval({})).toBe(5_000);
    expect(progressInterval({ THFC_PROGRESS_SECONDS: '30' })).toBe(30_000);
    expect(progressInterval({ THFC_PROGRESS_SECONDS: '0.25' })).toBe(250);
    expect(progressInterval({ THFC_PROGRESS_SECONDS: 'soon' })).toBe(5_000);
    expect(progressInterval({ THFC_PROGRESS_SECONDS: '0' })).toBe(5_000);
  });
});
