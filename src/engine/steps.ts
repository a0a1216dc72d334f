/**
 * Running a copy's work as batches (see native/src/batch.cc): each op with
 * the entry it is for, so that a refused piece of metadata becomes a
 * warning about that entry and a failure names it. An entry already at
 * the destination is replaced, or merged into when both are directories,
 * by the caller's replace(), and the batch goes on from there. A full
 * filesystem (ENOSPC) can be made room in by the caller's full() (which
 * grows the image), and the batch goes on from the step that failed.
 */
import { getSystemErrorName } from 'node:util';
import { errnoError, type BatchOp, type Binding } from '../kernel/binding.js';
import { LklfsError } from '../errors.js';
import type { FileKind } from './modes.js';
import type { MetadataWarnings } from './warnings.js';

export interface Step<S> {
  op: BatchOp;
  /** For warnings: "owner", "mode", ... */
  what: string;
  source: S;
  /** The op that creates the entry: EEXIST there means "replace it". */
  create?: boolean;
}

export interface StepHooks<S> {
  /** Where an entry is, for warnings. */
  show(source: S): string;
  /** Clears the way for step's entry: merged (a directory) or removed. */
  replace(step: Step<S>): Promise<'merged' | 'removed'>;
  /** Each op's successful result (bytes copied, ...). */
  done?(step: Step<S>, ret: number): void;
  /**
   * A create refused with EPERM: true when the entry is to be skipped
   * (its other steps are dropped), false to fail.
   */
  refused?(step: Step<S>): boolean;
  /**
   * The filesystem is full at step (ENOSPC), for the attempt-th time in a
   * row with no step done in between: true once there is more room (the
   * step is tried again), false to fail.
   */
  full?(step: Step<S>, attempt: number): Promise<boolean>;
}

/** The system call each op stands for, where its name is not one. */
const SYSCALL: Partial<Record<BatchOp[0], string>> = {
  lutimes: 'utimensat',
  copyXattrs: 'lsetxattr',
  setXattr: 'lsetxattr',
  hostMkdir: 'mkdir',
  hostSymlink: 'symlink',
  hostLink: 'link',
  hostMknod: 'mknod',
  hostLchown: 'lchown',
  hostChmod: 'chmod',
  hostLutimes: 'utimensat',
  hostSetXattr: 'lsetxattr',
  hostUnlink: 'unlink',
};

const EPERM = -1;
const EEXIST = -17;
const ENOSPC = -28;

/** What batch() lets pass for a tolerant op (see batch.cc). */
function tolerated(op: BatchOp, ret: number): boolean {
  const owner = op[0] === 'lchown' || op[0] === 'hostLchown';
  return op[1] && (ret === EPERM || ret === -95 /* EOPNOTSUPP */ || (owner && ret === -22) /* EINVAL */);
}

export async function runSteps<S>(
  native: Binding,
  steps: Step<S>[],
  hooks: StepHooks<S>,
  warnings: MetadataWarnings,
  signal?: AbortSignal,
): Promise<void> {
  let attempt = 0;
  while (steps.length) {
    if (signal?.aborted) throw signal.reason;
    const r = await native.batch(steps.map((s) => s.op));
    r.results.forEach((ret, i) => {
      const step = steps[i] as Step<S>;
      if (ret >= 0) hooks.done?.(step, ret);
      else if (tolerated(step.op, ret)) warnings.add(step.what, hooks.show(step.source), getSystemErrorName(ret));
    });
    const last = r.results.length - 1;
    const ret = r.results[last] as number;
    const step = steps[last] as Step<S>;
    if (ret >= 0 || tolerated(step.op, ret)) return; // all ran: a stop is a failure
    if (step.create && ret === EPERM && hooks.refused?.(step)) {
      steps = steps.slice(last + 1).filter((s) => s.source !== step.source);
      continue;
    }
    if (ret === ENOSPC && hooks.full) {
      attempt = last === 0 ? attempt + 1 : 1;
      if (await hooks.full(step, attempt)) {
        // A file whose copy stopped half way is in the way now: replaced.
        steps = steps.slice(last);
        continue;
      }
    }
    if (!(step.create && ret === EEXIST)) {
      const where = r.path ?? (step.op[2] as Buffer);
      throw errnoError(ret, r.syscall ?? SYSCALL[step.op[0]] ?? step.op[0], where.toString());
    }
    steps = steps.slice((await hooks.replace(step)) === 'merged' ? last + 1 : last);
  }
}

/**
 * What to do about an entry already where a copy goes, as cp -a decides:
 * a directory onto a directory merges, any other non-directory is
 * replaced; a directory and a non-directory never replace each other.
 */
export function inTheWay(there: FileKind, coming: FileKind, where: string): 'merge' | 'remove' {
  if (there === 'dir' && coming === 'dir') return 'merge';
  if (there === 'dir') throw new LklfsError(`cannot overwrite directory ${where} with a non-directory`);
  if (coming === 'dir') throw new LklfsError(`cannot overwrite non-directory ${where} with a directory`);
  return 'remove';
}
