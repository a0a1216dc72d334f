import { expectAllOk, run } from './harness.js';

describe('kernel library: boot, system calls, halt', () => {
  test('boots with a seeded random number generator, serves four threads at once, halts, refuses a second boot', () => {
    const r = run('boot');
    expectAllOk(r, [
      'boot',
      'host threads are threads of pid 1',
      'random numbers without waiting',
      'four threads at once',
      'errors are negative errno',
      'halt',
      'calls after halt fail',
      'second boot is refused',
    ]);
  });
});

describe('kernel library: wall clock', () => {
  const mtime = (args: string[]): number => {
    const r = run('boot', args);
    expectAllOk(r);
    const m = /^mtime (\d+)$/m.exec(r.stdout);
    if (!m?.[1]) throw new Error(`no mtime in:\n${r.stdout}`);
    return Number(m[1]);
  };

  test('files get the host time by default', () => {
    expect(Math.abs(mtime([]) - Date.now() / 1000)).toBeLessThan(120);
  });

  test('lkl_epoch= sets the clock for reproducible images', () => {
    const t = mtime(['1000000000']);
    expect(t).toBeGreaterThanOrEqual(1000000000);
    expect(t).toBeLessThan(1000000060);
  });
});

describe('kernel library: lkl_prefault', () => {
  test('backs the RAM with host memory ahead of the kernel, and halt returns it', () => {
    expectAllOk(run('prefault', ['on']), ['boot', 'RAM populated', 'halt', 'RAM returned']);
  });

  test('without it, RAM is host memory only once the kernel touches it', () => {
    expectAllOk(run('prefault', ['off']), ['boot', 'RAM populated on demand only', 'halt', 'RAM returned']);
  });
});
