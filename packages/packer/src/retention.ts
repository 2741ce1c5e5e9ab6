import type { ImageVersion } from '@thfc/format';

/**
 * Which retained versions of an image gc keeps (docs/thfc-pack.md, gc). A
 * client may still run any recent version with a partial cache, so its
 * blocks must outlive the next publication: gc keeps the newest `keep`
 * versions, every version younger than `keepDays`, and the one NAME.idx
 * names (a rollback may point at an old one).
 */
export interface RetentionPolicy {
  readonly keep: number;
  readonly keepDays: number;
}

/** Three versions: the current one, the one before (clients not yet switched), and one to roll back to. */
export const DEFAULT_KEEP_VERSIONS = 3;
/** A week: a machine that boots weekly still finds the blocks of the version it cached. */
export const DEFAULT_KEEP_DAYS = 7;

export type KeepReason = 'latest' | 'newest' | 'recent';

export interface RetentionDecision {
  readonly kept: readonly { readonly version: ImageVersion; readonly why: KeepReason }[];
  readonly retired: readonly ImageVersion[];
}

/** `versions` newest first (sortVersions); `now` in ms since the epoch. */
export function decideRetention(
  versions: readonly ImageVersion[],
  latest: string | undefined,
  policy: RetentionPolicy,
  now: number,
): RetentionDecision {
  const kept: { version: ImageVersion; why: KeepReason }[] = [];
  const retired: ImageVersion[] = [];
  const cutoff = now - policy.keepDays * 86_400_000;
  versions.forEach((version, rank) => {
    const why: KeepReason | undefined =
      version.digest === latest
        ? 'latest'
        : rank < policy.keep
          ? 'newest'
          : Date.parse(version.created) > cutoff
            ? 'recent'
            : undefined;
    if (why) kept.push({ version, why });
    else retired.push(version);
  });
  return { kept, retired };
}
