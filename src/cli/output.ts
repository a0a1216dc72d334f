/**
 * Writing to stdout with backpressure (the promise settles once the chunk
 * is handed to the OS); a reader that goes away (EPIPE, as in `lklfs cat
 * ... | head`) ends the job quietly instead of failing it.
 */
import { LklfsError } from '../errors.js';

/** Exit status 0 and no message: the reader had all it wanted. */
export class OutputClosed extends LklfsError {
  constructor() {
    super('standard output was closed', 0);
  }
}

// Errors reach the write callbacks; without a listener they would also
// be thrown as an uncaught error event. @oclif/core's own listener
// rethrows all but EPIPE (ENOSPC from `> /dev/full` would crash with a
// stack trace), so it goes.
process.stdout.removeAllListeners('error');
process.stdout.on('error', () => undefined);

export function writeOut(chunk: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(chunk, (e) => {
      if (!e) resolve();
      else reject((e as NodeJS.ErrnoException).code === 'EPIPE' ? new OutputClosed() : e);
    });
  });
}
