/**
 * Shell patterns matched against one name, as fnmatch(3) with no flags
 * matches them in the C locale (what LKL's cptofs does with a source's
 * last component): bytes, not characters; "*" and "?" match a leading
 * "." too; "[...]" sets with "!" or "^" to negate, ranges of byte values
 * and the POSIX classes ("[[:digit:]]"); a backslash makes the next byte
 * literal (a pattern ending in one matches nothing). A "[" with no
 * closing "]" is itself.
 */

type Token = { kind: 'byte'; byte: number } | { kind: 'any' } | { kind: 'star' } | { kind: 'set'; has: (b: number) => boolean };

const BACKSLASH = 0x5c;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

const digit = (b: number) => b >= 0x30 && b <= 0x39;
const upper = (b: number) => b >= 0x41 && b <= 0x5a;
const lower = (b: number) => b >= 0x61 && b <= 0x7a;
const alnum = (b: number) => digit(b) || upper(b) || lower(b);
const graph = (b: number) => b > 0x20 && b < 0x7f;

/** The C locale's classes: ASCII only. */
const CLASSES: Record<string, (b: number) => boolean> = {
  alnum,
  alpha: (b) => upper(b) || lower(b),
  blank: (b) => b === 0x20 || b === 0x09,
  cntrl: (b) => b < 0x20 || b === 0x7f,
  digit,
  graph,
  lower,
  print: (b) => b >= 0x20 && b < 0x7f,
  punct: (b) => graph(b) && !alnum(b),
  space: (b) => b === 0x20 || (b >= 0x09 && b <= 0x0d),
  upper,
  xdigit: (b) => digit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66),
};

/** Whether a name's last component needs matching at all (has *, ?, [ or \). */
export function isPattern(pattern: Buffer): boolean {
  return pattern.some((b) => b === 0x2a || b === 0x3f || b === LBRACKET || b === BACKSLASH);
}

/**
 * The set starting at pattern[at] (just after "["): its test and the
 * index after its "]", or undefined when there is no "]" to end it.
 */
function parseSet(pattern: Buffer, at: number): { has: (b: number) => boolean; next: number } | undefined {
  let i = at;
  const negate = pattern[i] === 0x21 || pattern[i] === 0x5e; // ! or ^
  if (negate) i++;
  const tests: ((b: number) => boolean)[] = [];
  let valid = true;
  for (let first = true; ; first = false) {
    if (i >= pattern.length) return undefined;
    let b = pattern[i] as number;
    // "]" right after "[" or "[!" is a member, not the end.
    if (b === RBRACKET && !first) break;
    if (b === LBRACKET && pattern[i + 1] === 0x3a) {
      const end = pattern.indexOf(':]', i + 2);
      if (end < 0) return undefined;
      const test = CLASSES[pattern.subarray(i + 2, end).toString('latin1')];
      if (test) tests.push(test);
      else valid = false;
      i = end + 2;
      continue;
    }
    if (b === BACKSLASH && i + 1 < pattern.length) b = pattern[++i] as number;
    i++;
    if (pattern[i] === 0x2d && i + 1 < pattern.length && pattern[i + 1] !== RBRACKET) {
      let hi = pattern[i + 1] as number;
      i += 2;
      if (hi === BACKSLASH && i < pattern.length) hi = pattern[i++] as number;
      const lo = b;
      tests.push((c) => c >= lo && c <= hi);
    } else {
      const only = b;
      tests.push((c) => c === only);
    }
  }
  // An unknown class makes the pattern invalid: fnmatch matches nothing then.
  const has = valid ? (c: number) => tests.some((t) => t(c)) !== negate : () => false;
  return { has, next: i + 1 };
}

/** The pattern's tokens; undefined for one that ends in a lone backslash, which matches nothing. */
function compile(pattern: Buffer): Token[] | undefined {
  const tokens: Token[] = [];
  for (let i = 0; i < pattern.length; ) {
    const b = pattern[i] as number;
    if (b === 0x2a) {
      if (tokens.at(-1)?.kind !== 'star') tokens.push({ kind: 'star' });
      i++;
    } else if (b === 0x3f) {
      tokens.push({ kind: 'any' });
      i++;
    } else if (b === LBRACKET) {
      const set = parseSet(pattern, i + 1);
      if (set) {
        tokens.push({ kind: 'set', has: set.has });
        i = set.next;
      } else {
        tokens.push({ kind: 'byte', byte: b });
        i++;
      }
    } else if (b === BACKSLASH) {
      if (i + 1 === pattern.length) return undefined;
      tokens.push({ kind: 'byte', byte: pattern[i + 1] as number });
      i += 2;
    } else {
      tokens.push({ kind: 'byte', byte: b });
      i++;
    }
  }
  return tokens;
}

function matchOne(t: Token, b: number): boolean {
  if (t.kind === 'any') return true;
  if (t.kind === 'byte') return t.byte === b;
  return t.kind === 'set' && t.has(b);
}

/** A matcher for one pattern, to test many names with. */
export function fnmatcher(pattern: Buffer): (name: Buffer) => boolean {
  const tokens = compile(pattern);
  if (!tokens) return () => false;
  return (name) => {
    // Left to right; on a mismatch, the last "*" takes one byte more.
    let t = 0;
    let n = 0;
    let starT = -1;
    let starN = 0;
    while (n < name.length) {
      const tok = tokens[t];
      if (tok?.kind === 'star') {
        starT = t++;
        starN = n;
      } else if (tok && matchOne(tok, name[n] as number)) {
        t++;
        n++;
      } else if (starT >= 0) {
        t = starT + 1;
        n = ++starN;
      } else {
        return false;
      }
    }
    while (tokens[t]?.kind === 'star') t++;
    return t === tokens.length;
  };
}
