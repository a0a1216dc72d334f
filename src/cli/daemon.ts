/**
 * Commands that go on in the background once ready (lklfs mount). Node
 * cannot fork, so the command runs again, detached (a session of its own,
 * no terminal), with the extra arguments that make it a daemon; that
 * process says "ready" on the pipe given as its fd 3 and the first one
 * exits 0. Until then the daemon's stderr is passed on, and if it ends
 * first, its exit status is ours: errors look the same either way.
 */
import { spawn } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import { constants } from 'node:os';

/** The file descriptor the daemon reports on. */
export const NOTIFY_FD = 3;

/** Starts this command again as a daemon (extra: its arguments for that); its exit status if it fails. */
export function startDaemon(extra: string[]): Promise<number> {
  const [script, ...args] = process.argv.slice(1);
  const child = spawn(process.execPath, [...process.execArgv, script as string, ...args, ...extra], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  const [, , stderr, notify] = child.stdio;
  stderr?.pipe(process.stderr, { end: false });
  return new Promise((resolve, reject) => {
    let ready = false;
    notify?.on('data', (d: Buffer) => {
      if (ready || !d.toString().includes('ready')) return;
      ready = true;
      // The daemon lives on by itself; nothing here waits for it.
      stderr?.unpipe(process.stderr);
      stderr?.destroy();
      notify.destroy();
      child.unref();
      resolve(0);
    });
    child.on('error', reject);
    child.on('close', (status, signal) => {
      if (!ready) resolve(status ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}

/**
 * In the daemon: tells the first process that we are ready, which then
 * exits. Our stderr goes nowhere from then on (its reader is gone): what
 * would be written there is dropped rather than fail.
 */
export function notifyReady(fd: number): void {
  writeSync(fd, 'ready\n');
  closeSync(fd);
  process.stderr.on('error', () => undefined);
}
