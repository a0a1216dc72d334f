/**
 * The base of every lklfs command: an LklfsError ends the command with
 * one line on stderr ("lklfs COMMAND: message") and its exit status.
 * Every command takes --json: run() returns the result object, printed as
 * the JSON output, and a failure is {"error": ...} on stdout instead.
 */
import * as Args from '@oclif/core/args';
import { Command } from '@oclif/core/command';
import type { Arg } from '@oclif/core/interfaces';
import { LklfsError } from '../errors.js';
import { summary, withProgress } from './progress.js';

/**
 * A command-line argument. oclif reads a missing argument from standard
 * input when that is a pipe: `echo x | lklfs ls -i IMG` would list "x",
 * and tar2fs would lose the start of its archive. Standard input is the
 * commands' own business.
 */
export function argument(opts: { description: string; required: true }): Arg<string>;
export function argument(opts: { description: string; default: string }): Arg<string>;
export function argument(opts: { description: string }): Arg<string | undefined>;
export function argument(opts: { description: string; required?: boolean; default?: string }): Arg<string> | Arg<string | undefined> {
  return Args.string({ ...opts, ignoreStdin: true });
}

export abstract class LklfsCommand extends Command {
  static override enableJsonFlag = true;

  /** A spinner while job runs and a summary after: on a terminal, and never with --json. */
  protected progress<T>(label: string, job: (update: (text: string) => void) => Promise<T>): Promise<T> {
    return withProgress(label, job, !this.jsonEnabled());
  }

  /** A job's last word for a person watching (with --json, the result says it). */
  protected summary(line: string): void {
    if (!this.jsonEnabled()) summary(line);
  }

  /** What a job left out: on stderr, or with --json in the result only. */
  protected printWarnings(warnings: string[]): void {
    if (!this.jsonEnabled()) for (const w of warnings) process.stderr.write(`lklfs ${this.id}: warning: ${w}\n`);
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    const exitCode = err instanceof LklfsError ? err.exitCode : err.oclif?.exit;
    if (this.jsonEnabled() && exitCode !== undefined) {
      // One JSON object on stdout, as a success would be; the exit status as without --json.
      const cause = err.cause as { code?: unknown } | undefined;
      const code = typeof cause?.code === 'string' ? cause.code : undefined;
      if (exitCode !== 0) this.logJson({ error: { message: err.message, exitCode, ...(code ? { code } : {}) } });
      this.exit(exitCode);
    }
    if (err instanceof LklfsError) {
      if (err.exitCode !== 0) process.stderr.write(`lklfs ${this.id}: ${err.message}\n`);
      this.exit(err.exitCode);
    }
    return super.catch(err);
  }
}
