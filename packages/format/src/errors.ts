/**
 * The error hierarchy shared by every thfc package. Each class has a stable
 * `code` that scripts, the CLI exit-code table and log lines rely on: never
 * rename a code, add a new class instead.
 */
export abstract class ThfcError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A caller passed a value outside the format's rules (block size, name, codec spec…). */
export class InvalidArgumentError extends ThfcError {
  readonly code = 'ERR_INVALID_ARGUMENT';
}

/**
 * An index (mapping table) is malformed. `line` is 1-based; `field` names the
 * header key or entry column that is wrong, when there is one.
 */
export class IndexFormatError extends ThfcError {
  readonly code = 'ERR_INDEX_FORMAT';
  constructor(
    readonly reason: string,
    readonly line: number | undefined,
    readonly field?: string,
  ) {
    super(`${line === undefined ? 'index' : `index line ${line}`}${field ? ` (${field})` : ''}: ${reason}`);
  }
}

/** A signature is malformed or does not verify, or a required signer is absent. */
export class SignatureError extends ThfcError {
  readonly code = 'ERR_SIGNATURE';
}

/** Seam error 1 of 3, "not here": the source answered and does not hold the block. */
export class BlockNotFoundError extends ThfcError {
  readonly code = 'ERR_BLOCK_NOT_FOUND';
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
  constructor(
    readonly blockId: string,
    readonly source: string,
    reason: string,
  ) {
    super(`block ${blockId} from ${source} is corrupt: ${reason}`);
  }
}
