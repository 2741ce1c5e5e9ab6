/**
 * The error hierarchy shared by every thfc package. Each class has a stable
 * `code` that scripts and log lines rely on (never rename a code, add a new
 * class instead), and the `exitCode` (from EXIT) a command that meets it ends
 * with: a package adds a class with its own code without a central list.
 */
export abstract class ThfcError extends Error {
  abstract readonly code: string;
  abstract readonly exitCode: number;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A caller passed a value outside the format's rules (block size, name, codec spec…). */
export class InvalidArgumentError extends ThfcError {
  readonly code = 'ERR_INVALID_ARGUMENT';
  readonly exitCode: number = EXIT.USAGE;
}

/**
 * A line-based file (an index, a trust store, a measurement log…) is
 * malformed. `line` is 1-based; `field` names the header key, column or
 * word that is wrong, when there is one; `file` is the file or URL it came
 * from, when the caller knows it. Each subclass keeps its own stable `code`.
 */
export abstract class LineFormatError extends ThfcError {
  readonly exitCode: number = EXIT.DATA;
  constructor(
    readonly reason: string,
    readonly line: number | undefined,
    readonly field: string | undefined,
    readonly file: string | undefined,
    /** What stands for the file in the message when there is none ("index: "). */
    unnamed: string,
  ) {
    super(
      `${file ? `${file}: ` : unnamed}${line === undefined ? '' : `line ${line}${field ? ` (${field})` : ''}: `}${reason}`,
    );
  }
}

/** An index (mapping table) is malformed: `index line 3 (size): bad image size 0`. */
export class IndexFormatError extends LineFormatError {
  readonly code = 'ERR_INDEX_FORMAT';
  constructor(reason: string, line: number | undefined, field?: string, file?: string) {
    super(reason, line, field, file, line === undefined ? 'index: ' : 'index ');
  }
}

/** A signature is malformed or does not verify, or a required signer is absent. */
export class SignatureError extends ThfcError {
  readonly code = 'ERR_SIGNATURE';
  readonly exitCode: number = EXIT.DATA;
}

/**
 * A trust store refused every signature on an index (or profile). `reason`
 * names the rule: revoked, expired, out-of-scope, unsigned, untrusted or
 * invalid (see trust-policy.ts). Same code as any signature failure.
 */
export class TrustRefusedError extends SignatureError {
  constructor(
    message: string,
    readonly reason: 'unsigned' | 'invalid' | 'untrusted' | 'revoked' | 'expired' | 'out-of-scope',
  ) {
    super(message);
  }
}

/**
 * A pinned index (`URL#sha256:<digest>`, `--pin`) could not be had: the
 * mirror publishes another version and keeps no retained copy of the pinned
 * one, or served bytes with another digest. Refused like a failed signature:
 * a pin guards against rollback and freeze attacks.
 */
export class PinRefusedError extends ThfcError {
  readonly code = 'ERR_PIN';
  readonly exitCode: number = EXIT.DATA;
}

/** A trust-store file is malformed. `field` names the word that is wrong. */
export class TrustStoreFormatError extends LineFormatError {
  readonly code = 'ERR_TRUST_STORE_FORMAT';
  constructor(reason: string, line: number | undefined, field?: string, file?: string) {
    super(reason, line, field, file, 'trust store: ');
  }
}

/** A catalog.json is malformed. `field` is the JSON path of the bad value (images[2].boot.mem). */
export class CatalogFormatError extends ThfcError {
  readonly code = 'ERR_CATALOG_FORMAT';
  readonly exitCode: number = EXIT.DATA;
  constructor(
    readonly source: string,
    readonly field: string | undefined,
    readonly reason: string,
  ) {
    super(`${source}: ${field ? `${field}: ` : ''}${reason}`);
  }
}

/** Seam error 1 of 3, "not here": the source answered and does not hold the block. */
export class BlockNotFoundError extends ThfcError {
  readonly code = 'ERR_BLOCK_NOT_FOUND';
  readonly exitCode: number = EXIT.DATA;
  constructor(
    readonly blockId: string,
    readonly source: string,
  ) {
    super(`block ${blockId} not found in ${source}`);
  }
}

/** Seam error 2 of 3, "could not answer": timeout, connection failure, 5xx, I/O error. */
export class MirrorUnavailableError extends ThfcError {
  readonly code = 'ERR_MIRROR_UNAVAILABLE';
  readonly exitCode: number = EXIT.IO;
  constructor(
    readonly source: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${source} unavailable: ${reason}`, options);
  }
}

/** Seam error 3 of 3, "bad bytes": the stored bytes do not decode to the block they are named after. */
export class BlockCorruptError extends ThfcError {
  readonly code = 'ERR_BLOCK_CORRUPT';
  readonly exitCode: number = EXIT.DATA;
  constructor(
    readonly blockId: string,
    readonly source: string,
    /** What is wrong with it, without the block and source (a thread passes it on to be raised again). */
    readonly reason: string,
  ) {
    super(`block ${blockId} from ${source} is corrupt: ${reason}`);
  }
}

/** The user named the wrong kind of thing: an index where a store was expected, a directory as an image… */
export class UsageError extends ThfcError {
  readonly code = 'ERR_USAGE';
  readonly exitCode: number = EXIT.USAGE;
}

/** An input file is missing or cannot be read. */
export class InputError extends ThfcError {
  readonly code = 'ERR_INPUT';
  readonly exitCode: number = EXIT.INPUT;
}

/** The store's file system is full. Everything written so far is valid; run again after freeing space. */
export class StoreFullError extends ThfcError {
  readonly code = 'ERR_NO_SPACE';
  readonly exitCode: number = EXIT.IO;
}

/** Any other I/O failure while writing. */
export class StoreIoError extends ThfcError {
  readonly code = 'ERR_IO';
  readonly exitCode: number = EXIT.IO;
}

/** Ctrl-C or SIGTERM stopped the work; what was written is valid and will be reused by a rerun. */
export class InterruptedError extends ThfcError {
  readonly code = 'ERR_INTERRUPTED';
  readonly exitCode: number = EXIT.INTERRUPTED;
}

/** `verify` found missing or corrupt blocks, or `inspect` found an untrusted or invalid signature. */
export class CheckFailedError extends ThfcError {
  readonly code = 'ERR_CHECK_FAILED';
  readonly exitCode: number = EXIT.CHECK_FAILED;
}

/**
 * Something is in use and was left as it was: a mount that processes or loop
 * devices still read. Trying again once they are gone may succeed (EX_TEMPFAIL).
 */
export class BusyError extends ThfcError {
  readonly code = 'ERR_BUSY';
  readonly exitCode: number = EXIT.BUSY;
}

/** A command did part of its work and says which part is left (`httpstorged umount`: the daemon did not exit). */
export class IncompleteError extends ThfcError {
  readonly code = 'ERR_INCOMPLETE';
  readonly exitCode: number = EXIT.IO;
}

/** Maps a Node fs error to a typed error with a message a user can act on. */
export function fsError(e: unknown, what: string): ThfcError {
  const code = (e as NodeJS.ErrnoException)?.code;
  switch (code) {
    case 'ENOENT':
      return new InputError(`${what}: no such file or directory`);
    case 'EACCES':
    case 'EPERM':
      return new InputError(`${what}: permission denied`);
    case 'EISDIR':
      return new UsageError(`${what}: is a directory`);
    case 'ENOTDIR':
      return new UsageError(`${what}: a parent is not a directory`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new StoreFullError(`${what}: no space left on device`);
    case 'EROFS':
      return new StoreIoError(`${what}: read-only file system`);
    default:
      if (e instanceof ThfcError) return e;
      return new StoreIoError(`${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
}

/**
 * Process exit codes, one table for every thfc command, so scripts can tell
 * a user's mistake from bad data from a broken environment.
 */
export const EXIT = {
  OK: 0,
  /** A check ran and found problems (verify, untrusted signature): like cmp and diff. */
  CHECK_FAILED: 1,
  /** Wrong arguments or the wrong kind of path. */
  USAGE: 2,
  /** A named input file is missing or unreadable. */
  INPUT: 3,
  /** Bad data: a malformed or tampered index, a bad signature, a missing or corrupt block. */
  DATA: 4,
  /** The environment failed: disk full, I/O error, mirrors unreachable. */
  IO: 5,
  /** A bug: anything untyped. Printed with its stack trace. */
  SOFTWARE: 70,
  /** In use, nothing changed: try again later (sysexits' EX_TEMPFAIL). `httpstorged umount` of a busy mount. */
  BUSY: 75,
  /** SIGINT/SIGTERM, as shells report 128+2. */
  INTERRUPTED: 130,
} as const;

/** The exit code a command that failed with E ends with: its own, or EXIT.SOFTWARE (a bug) for an untyped error. */
export function exitCodeOf(e: unknown): number {
  return e instanceof ThfcError ? e.exitCode : EXIT.SOFTWARE;
}
