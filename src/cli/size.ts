/**
 * Sizes given on the command line: "1G" (absolute) or "+512M" (relative),
 * in bytes or with a K, M, G or T suffix (powers of 1024, as truncate -s
 * and sfdisk read them).
 */
import { UsageError } from '../errors.js';
import type { SizeRequest } from '../engine/grow.js';

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Parses SIZE for flag (named in the error); a bad one is a usage error. */
export function parseSize(text: string, flag: string): SizeRequest {
  const m = /^(\+?)(\d+(?:\.\d+)?)([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  const bytes = m ? Math.ceil(Number(m[2]) * (UNITS[(m[3] as string).toUpperCase()] as number)) : NaN;
  if (!m || !Number.isSafeInteger(bytes))
    throw new UsageError(`${flag}: "${text}" is not a size (a number of bytes, or with K, M, G or T: 512M, +1G)`);
  return { relative: m[1] === '+', bytes };
}
