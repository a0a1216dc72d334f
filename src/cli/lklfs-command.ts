/**
 * The base of every lklfs command: an LklfsError ends the command with
 * one line on stderr ("lklfs COMMAND: message") and its exit status.
 */
import { Command } from '@oclif/core';
import { LklfsError } from '../errors.js';

export abstract class LklfsCommand extends Command {
  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    if (err instanceof LklfsError) {
      if (err.exitCode !== 0) process.stderr.write(`lklfs ${this.id}: ${err.message}\n`);
      this.exit(err.exitCode);
    }
    return super.catch(err);
  }
}
