/**
 * Running a copy's work as batches (see native/src/batch.cc): each op with
 * the entry it is for, so that a refused piece of metadata becomes a
 * warning about that entry and a failure names it. An entry already at
 * the destination is replaced, or merged into when both are directories,
 * by the caller's replace(), and the batch goes on from there.
 */
import { getSystemErrorName } from 'node:util';
import { errnoError, type BatchOp, type Binding } from '../kernel/binding.js';
import type { Mount } from '../kernel/kernel.js';
import { LklfsError } from '../errors.js';
import { kindOf, type FileKind } from './modes.js';
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
}

/** The system call each op stands for, where its name is not one. */
const SYSCALL: Partial<Record<BatchOp[0], string>> = {
  lutimes: 'utimensat',
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

/**
 * Clears the way for a kind of entry coming to kernel path at (a
 * StepHooks.replace): merged into when both are directories, else the
 * entry there is removed (see inTheWay).
 */
export async function clearTheWay(mount: Mount, at: Buffer, coming: FileKind): Promise<'merged' | 'removed'> {
  const native = mount.kernel.native;
  const there = kindOf((await native.lstat(at)).mode);
  if (inTheWay(there, coming, `${mount.image}:${mount.imagePath(at).toString()}`) === 'merge') return 'merged';
  await native.unlink(at);
  return 'removed';
}
