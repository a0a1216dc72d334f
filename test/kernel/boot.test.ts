import { expectAllOk, run } from './harness.js';

describe('kernel library: boot, system calls, halt', () => {
  test('boots, serves four threads at once, halts, refuses a second boot', () => {
    const r = run('boot');
    expectAllOk(r, [
      'boot',
      'boot thread is pid 1',
      'four threads at once',
      'errors are negative errno',
      'halt',
      'calls after halt fail',
      'second boot is refused',
    ]);
  });
});
