// The mirror's errors are the shared ones in @thfc/format (one hierarchy, one exit-code table); this file
// re-exports those the mirror raises, so callers of @thfc/mirror need not depend on @thfc/format for them.
export {
  BlockCorruptError,
  BlockNotFoundError,
  IndexFormatError,
  InputError,
  InterruptedError,
  MirrorUnavailableError,
  UsageError,
} from '@thfc/format';
