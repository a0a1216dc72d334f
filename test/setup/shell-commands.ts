/**
 * The commands a shell script of ours runs: the words in command position
 * (after a newline, ;, &&, ||, |, $(, (, {, `, then, do, else, !, and
 * through wrappers such as xargs and exec), leaving out builtins, keywords,
 * variable assignments, commands that are variables ("$cc") and the
 * script's own functions. A reader for the scripts in this repository,
 * which keep to plain bash: no aliases, no eval'd strings.
 */

const KEYWORDS = new Set(['if', 'then', 'else', 'elif', 'fi', 'for', 'while', 'until', 'do', 'done', 'case', 'esac', 'in', 'function', '{', '}', '!', '[[', ']]', 'time']);
const BUILTINS = new Set([
  '.', ':', '[', 'break', 'cd', 'command', 'continue', 'declare', 'echo', 'eval', 'exec', 'exit', 'export', 'false',
  'getopts', 'hash', 'kill', 'local', 'mapfile', 'printf', 'pwd', 'read', 'readonly', 'return', 'set', 'shift',
  'source', 'test', 'trap', 'true', 'type', 'umask', 'unset', 'wait',
]);
/** Words after which the next word is the command that really runs. */
const WRAPPERS = new Set(['exec', 'xargs', 'env', 'nice', 'nohup', 'time', '!']);
const SEPARATORS = new Set([';', ';;', '&&', '||', '|', '&', '$(', '(', ')', '`', '\n']);

/** Words and separators of a script, quotes kept on the words, comments and here-documents dropped. */
function tokens(script: string): string[] {
  const out: string[] = [];
  let word = '';
  const flush = () => {
    if (word) out.push(word);
    word = '';
  };
  let heredoc: string | undefined;
  // A backslash at the end of a line continues the command.
  const lines = script.replace(/\\\n/g, ' ').split('\n');
  for (const line of lines) {
    if (heredoc !== undefined) {
      if (line.trim() === heredoc) heredoc = undefined;
      continue;
    }
    const start = /<<-?\s*['"]?(\w+)['"]?/.exec(line);
    for (let i = 0; i < line.length; i++) {
      const c = line[i] as string;
      if (c === "'" || c === '"') {
        const end = line.indexOf(c, i + 1);
        const close = end < 0 ? line.length : end;
        word += line.slice(i, close + 1);
        i = close;
      } else if (c === '#' && word === '') {
        break;
      } else if (c === ' ' || c === '\t') {
        flush();
      } else if (c === '$' && line[i + 1] === '(') {
        flush();
        out.push('$(');
        i++;
      } else if (c === '$' && line[i + 1] === '{') {
        const end = line.indexOf('}', i);
        word += line.slice(i, end + 1);
        i = end;
      } else if (';&|()`'.includes(c)) {
        const two = line.slice(i, i + 2);
        if (two === '&&' || two === '||' || two === ';;') {
          flush();
          out.push(two);
          i++;
        } else if ((c === '(' || c === ')') && word.endsWith('=')) {
          word += c; // an array assignment: NAME=(
        } else if (c === ')' && word !== '' && !word.startsWith('$')) {
          word += c; // a case pattern: 6.12.*)
          flush();
        } else if (c === '&' && (line[i + 1] === '>' || word.endsWith('>'))) {
          word += c; // >&2, &>/dev/null
        } else {
          flush();
          out.push(c);
        }
      } else {
        word += c;
      }
    }
    flush();
    out.push('\n');
    if (start) heredoc = start[1];
  }
  return out;
}

export function commandsOf(script: string): Set<string> {
  const found = new Set<string>();
  const functions = new Set<string>();
  const toks = tokens(script);
  let atCommand = true;
  let inArray = false;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i] as string;
    if (inArray) {
      if (t === ')') inArray = false;
      continue;
    }
    if (t === ')') {
      atCommand = false; // the end of $( ): the command around it goes on
      continue;
    }
    if (SEPARATORS.has(t) || t === 'then' || t === 'do' || t === 'else' || t === '{') {
      atCommand = true;
      continue;
    }
    if (!atCommand) continue;
    if (/^\w+=\($/.test(t)) {
      inArray = true;
      continue;
    }
    if (/^\w+\+?=/.test(t) || t.endsWith(')') || t.startsWith('>') || t.startsWith('<') || /^\d*>/.test(t)) continue;
    if (t === 'for' || t === 'case' || t === 'select') {
      atCommand = false; // up to do / in: words, not commands
      continue;
    }
    if (toks[i + 1] === '(' && toks[i + 2] === ')') {
      functions.add(t.replace(/\(\)$/, ''));
      i += 2;
      continue;
    }
    if (t.endsWith('()')) {
      functions.add(t.slice(0, -2));
      continue;
    }
    if (t === 'command' && toks[i + 1] === '-v') {
      atCommand = false; // a question, not a run
      continue;
    }
    if (WRAPPERS.has(t)) {
      // xargs -0 sha256sum: the first word that is not an option runs.
      while ((toks[i + 1] ?? '').startsWith('-')) i++;
      continue;
    }
    if (KEYWORDS.has(t)) continue;
    atCommand = false;
    if (/^["'$]/.test(t) || t.includes('/') || BUILTINS.has(t)) continue;
    found.add(t);
  }
  for (const f of functions) found.delete(f);
  return found;
}
