import type { BigIntStats } from 'node:fs';

/**
 * Which version of a file this is: `DEV INO SIZE CTIME MTIME`, in decimal,
 * times in nanoseconds (the cache seal's columns, docs/FORMAT.md §11).
 *
 * The change time is what makes it an identity: the kernel sets it to the
 * current time on every write, truncate, link count change (a rename over the
 * file, an unlink), chmod, chown and utimes, and no user can set it back (only
 * setting the clock back could, which needs root). The device and inode tell a
 * file replaced under the same name; size and modification time are
 * redundant with the change time but cost nothing and make a log line say
 * what changed. A change within the file system's timestamp granularity of
 * the moment an identity was recorded can keep it (see docs/TRUST.md, §5).
 */
export type FileIdentity = string;

export function identityOf(st: BigIntStats): FileIdentity {
  return `${st.dev} ${st.ino} ${st.size} ${st.ctimeNs} ${st.mtimeNs}`;
}

/**
 * True when two fstat results show the same version of a file: identityOf()
 * would be equal. Compares the fields without building strings, so the read
 * path's check costs the fstat and little more.
 */
export function sameVersion(a: BigIntStats, b: BigIntStats): boolean {
  return a.ctimeNs === b.ctimeNs && a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeNs === b.mtimeNs;
}

const FIELDS = ['device', 'inode', 'size', 'change time', 'modification time'] as const;

/** What differs between two identities, for a log line: "inode 12 → 34, change time". */
export function describeChange(was: FileIdentity, now: FileIdentity): string {
  const a = was.split(' ');
  const b = now.split(' ');
  const diffs: string[] = [];
  FIELDS.forEach((name, i) => {
    if (a[i] === b[i]) return;
    diffs.push(name === 'inode' || name === 'size' ? `${name} ${a[i]} → ${b[i]}` : name);
  });
  return diffs.length ? diffs.join(', ') : 'unchanged';
}
