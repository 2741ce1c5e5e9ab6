/** Accept-Encoding for indexes (RFC 9110 §12.5.3), reduced to the codings an index is served in. */

export type IndexCoding = 'zstd' | 'gzip';

/**
 * The codings `header` accepts among zstd and gzip, best first: by q-value,
 * then zstd before gzip (smaller and faster to decode). `q=0` refuses a
 * coding, `*` stands for any not named. No header, or one that accepts
 * neither, leaves the identity: an empty list.
 */
export function acceptedIndexCodings(header: string | undefined): IndexCoding[] {
  if (!header) return [];
  const q = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/.exec(p);
      if (m) weight = Number(m[1]);
    }
    q.set(name === 'x-gzip' ? 'gzip' : name, weight);
  }
  const any = q.get('*');
  const weightOf = (c: IndexCoding) => q.get(c) ?? any ?? 0;
  return (['zstd', 'gzip'] as const).filter((c) => weightOf(c) > 0).sort((a, b) => weightOf(b) - weightOf(a));
}
