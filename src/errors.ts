/**
 * Errors the user sees: a message that says what went wrong with what,
 * and the exit status the command ends with.
 */
export class LklfsError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LklfsError';
  }
}

/** Usage errors (bad flags, bad paths given): exit status 2. */
export class UsageError extends LklfsError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}
