/**
 * Telling EIOs a reader saw from EIOs only the kernel's read-ahead hit.
 *
 * FUSE does not say which read requests are read-ahead: a buffered read of
 * 4 KiB arrives as one request of up to 128 KiB, the reader's pages and the
 * kernel's read-ahead together. What the kernel does after a failure does
 * tell. A failed read-ahead leaves its pages not up to date and returns no
 * error to anyone; if a reader then needs one of those pages, the kernel asks
 * again, for that page alone (read_folio), and only that answer reaches the
 * reader. So a failure is first counted as a read-ahead error; when a later
 * request for the same image overlaps it (from any open file: the page cache
 * is the image's), the kernel has come back for a reader: the earlier failure
 * is no longer counted, and the retry's own
 * outcome is what the reader saw (a read error if it fails too, nothing if
 * it succeeds). A file opened with O_DIRECT has no read-ahead: each of its
 * failures is a read error at once. A failure the kernel never comes back for
 * stays a read-ahead error: no reader saw it.
 */
export interface FailureMemory {
  /** Failed ranges [start, end) of one image still counted as read-ahead errors, most recent last. */
  failed: [number, number][];
}

/** Failed ranges remembered per image: a retry comes soon after its failure, so a few suffice. */
export const MAX_REMEMBERED_FAILURES = 16;

export interface ErrorCounts {
  readErrors: number;
  readaheadErrors: number;
}

/** A request [start, end) failed (`direct`: of a file opened with O_DIRECT): counts it, and says which it is for now. */
export function countFailure(
  m: FailureMemory,
  direct: boolean,
  start: number,
  end: number,
  c: ErrorCounts,
): 'read' | 'readahead' {
  if (direct || forgetOverlapping(m, start, end, c)) {
    c.readErrors++;
    return 'read';
  }
  c.readaheadErrors++;
  m.failed.push([start, end]);
  if (m.failed.length > MAX_REMEMBERED_FAILURES) m.failed.shift();
  return 'readahead';
}

/** A request [start, end) succeeded: a failure it retried stays a read-ahead error (no reader saw one). */
export function noteSuccess(m: FailureMemory, start: number, end: number): void {
  if (m.failed.length) m.failed = m.failed.filter(([s, e]) => e <= start || s >= end);
}

/** Drops the remembered failures [start, end) overlaps, uncounting them; true if there was one. */
function forgetOverlapping(m: FailureMemory, start: number, end: number, c: ErrorCounts): boolean {
  const before = m.failed.length;
  noteSuccess(m, start, end);
  c.readaheadErrors -= before - m.failed.length;
  return m.failed.length < before;
}
