// The packer's errors are the shared ones in @thfc/format; this file only re-exports them for local imports.
export {
  CheckFailedError,
  fsError,
  InputError,
  InterruptedError,
  StoreFullError,
  StoreIoError,
  UsageError,
} from '@thfc/format';
