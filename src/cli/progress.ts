/**
 * Progress for a person watching: a spinner on stderr while the job runs,
 * a summary line after. Nothing at all when stderr is not a terminal
 * (logs and pipes stay clean), and then the spinner library is not even
 * loaded; no spinner either on a terminal without a width.
 */
import { formatBytes } from './format.js';

const tty = () => process.stderr.isTTY === true;
// A terminal that reports no width (a pseudo-terminal nobody sized, as
// `script` makes in CI) gets no spinner: ora divides by the width to
// count the lines to clear and would erase lines forever.
const spinnerFits = () => tty() && (process.stderr.columns ?? 0) > 0;

export async function withProgress<T>(
  label: string,
  job: (update: (text: string) => void) => Promise<T>,
  wanted = true,
): Promise<T> {
  if (!wanted || !spinnerFits()) return job(() => undefined);
  const { default: ora } = await import('ora');
  // discardStdin off: ora would take over stdin (and spin on one at EOF).
  const spinner = ora({ stream: process.stderr, discardStdin: false });
  spinner.start(label);
  // A new text redraws the line: at most ten times a second.
  let shown = 0;
  try {
    return await job((text) => {
      const now = Date.now();
      if (now - shown < 100) return;
      shown = now;
      spinner.text = `${label}: ${text}`;
    });
  } finally {
    spinner.stop();
  }
}

/** "1200 entries, 3.4 MiB" */
export function counts(entries: number, bytes: number): string {
  return `${entries} entries, ${formatBytes(bytes)}`;
}

export function summary(line: string): void {
  if (tty()) process.stderr.write(`${line}\n`);
}
