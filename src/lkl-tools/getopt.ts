/**
 * Command lines read as GNU getopt_long (and so LKL's tools, through
 * argp) reads them: options anywhere among the arguments unless
 * POSIXLY_CORRECT is set, "--" ends them, short options cluster ("-pt
 * ext4") and take their value attached or as the next argument
 * ("-text4", "-t ext4"), long ones as "--name=value" or "--name value"
 * and may be shortened to any unambiguous prefix ("--filesystem-i").
 * A lone "-" is an argument.
 */
import { UsageError } from '../errors.js';

export interface OptionSpec {
  /** The one-letter form, if any. */
  short?: string;
  long: string;
  /** The value's name in the help ("IMAGE"); none: the option is a switch. */
  value?: string;
  help: string;
  /** Left out of the help: a second letter for an option listed already. */
  hidden?: boolean;
}

export interface CommandLine {
  /** By long name; the last given wins, as in LKL's tools. */
  options: Map<string, string | true>;
  args: string[];
}

export function getopt(argv: string[], specs: OptionSpec[]): CommandLine {
  const options = new Map<string, string | true>();
  const args: string[] = [];
  const inOrder = process.env.POSIXLY_CORRECT !== undefined;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    const next = () => {
      if (i + 1 >= argv.length) return undefined;
      return argv[++i];
    };
    if (word === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = word.slice(2, eq < 0 ? undefined : eq);
      const spec = findLong(name, specs);
      if (!spec.value) {
        if (eq >= 0) throw new UsageError(`option '--${spec.long}' doesn't allow an argument`);
        options.set(spec.long, true);
        continue;
      }
      const value = eq >= 0 ? word.slice(eq + 1) : next();
      if (value === undefined) throw new UsageError(`option '--${spec.long}' requires an argument`);
      options.set(spec.long, value);
      continue;
    }
    if (word.startsWith('-') && word.length > 1) {
      for (let j = 1; j < word.length; j++) {
        const letter = word[j] as string;
        const spec = specs.find((s) => s.short === letter);
        if (!spec) throw new UsageError(`invalid option -- '${letter}'`);
        if (!spec.value) {
          options.set(spec.long, true);
          continue;
        }
        const value = j + 1 < word.length ? word.slice(j + 1) : next();
        if (value === undefined) throw new UsageError(`option requires an argument -- '${letter}'`);
        options.set(spec.long, value);
        break;
      }
      continue;
    }
    if (inOrder) {
      args.push(...argv.slice(i));
      break;
    }
    args.push(word);
  }
  return { options, args };
}

/** The option a long name stands for: itself, or the only one it begins. */
function findLong(name: string, specs: OptionSpec[]): OptionSpec {
  const exact = specs.find((s) => s.long === name);
  if (exact) return exact;
  const candidates = name ? specs.filter((s) => !s.hidden && s.long.startsWith(name)) : [];
  if (candidates.length === 1) return candidates[0] as OptionSpec;
  if (candidates.length > 1)
    throw new UsageError(`option '--${name}' is ambiguous; possibilities: ${candidates.map((s) => `'--${s.long}'`).join(' ')}`);
  throw new UsageError(`unrecognized option '--${name}'`);
}

/** The options' part of a help text, one per line, descriptions aligned. */
export function optionHelp(all: OptionSpec[]): string {
  const specs = all.filter((s) => !s.hidden);
  const left = specs.map((s) => {
    const long = `--${s.long}${s.value ? `=${s.value}` : ''}`;
    return s.short ? `  -${s.short}, ${long}` : `      ${long}`;
  });
  const width = Math.max(...left.map((l) => l.length)) + 2;
  return specs.map((s, i) => `${(left[i] as string).padEnd(width)}${s.help}`).join('\n');
}
