import { InvalidArgumentError, parseSize } from '@thfc/format';

/**
 * The option-value parsers every thfc command uses, so that a bad value
 * reads the same whichever command was given it. Each takes the flag it
 * reads (named in the message) and returns commander's argParser; a bad
 * value is an InvalidArgumentError (exit 2, usage).
 */

/** `--cache-size 2G`: a size in bytes, with an optional K/M/G/T unit. */
export const size =
  (flag: string) =>
  (v: string): number => {
    try {
      return parseSize(v);
    } catch (e) {
      throw new InvalidArgumentError(`${flag}: ${(e as Error).message}`);
    }
  };

/** `--connections 8`: a whole number no smaller than MIN. */
export const count =
  (flag: string, min: number) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`${flag} must be a whole number >= ${min}, not "${v}"`);
    }
    return n;
  };

/** `--timeout 2.5`: a positive number of seconds, fractions allowed. */
export const seconds =
  (flag: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) {
      throw new InvalidArgumentError(`${flag} must be a positive number of seconds, not "${v}"`);
    }
    return n;
  };

/** `--boot-timeout 0`: whole seconds, 0 allowed (digits only: no sign, fraction or exponent). */
export const wholeSeconds =
  (flag: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`${flag} must be whole seconds >= 0, not "${v}"`);
    }
    return n;
  };
