/**
 * Progress on a terminal: a spinner where the terminal has a width, none
 * where it reports 0 columns (a pseudo-terminal nobody sized, as `script`
 * makes in CI jobs), where the spinner library used to erase lines forever
 * and the job never ended.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inScratch, repoRoot, sh } from '../kernel/harness.js';

const ESC = '\x1b';

// A person's terminal: the spinner library stays quiet under CI=… or
// TERM=dumb (as a CI runner may set), which is not what is tested here.
function personsEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm' };
  delete env.CI;
  return env;
}

function underTerminal(columns: number, command: string): { status: number | null; out: string } {
  // stty sizes the pseudo-terminal script(1) made before lklfs starts.
  const r = spawnSync('script', ['-qec', `stty cols ${columns} rows 24; exec ${command}`, '/dev/null'], {
    encoding: 'utf8',
    timeout: 120_000,
    env: personsEnv(),
  });
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout };
}

function cptofsUnder(columns: number): Promise<{ status: number | null; out: string; img: string }> {
  return inScratch('terminal', (dir) => {
    const tree = join(dir, 'tree');
    mkdirSync(tree);
    for (let i = 0; i < 300; i++) writeFileSync(join(tree, `f${i}`), `${i}\n`);
    const img = join(dir, 'fs.img');
    sh('truncate', ['-s', '64M', img]);
    sh('mkfs.ext4', ['-q', '-F', img]);
    const r = underTerminal(columns, `${process.execPath} ${join(repoRoot, 'bin/run.js')} cptofs -i ${img} ${tree} /`);
    sh('e2fsck', ['-fn', img]);
    return { ...r, img };
  });
}

describe('progress on a terminal', () => {
  test('80 columns: a spinner, then the summary', async () => {
    const r = await cptofsUnder(80);
    expect(r.status).toBe(0);
    expect(r.out).toContain(`${ESC}[?25l`); // the spinner hid the cursor
    expect(r.out).toMatch(/copied 301 entries \(300 files/);
  });

  test('0 columns: no spinner, the summary, and the job ends', async () => {
    const r = await cptofsUnder(0);
    expect(r.status).toBe(0);
    expect(r.out).not.toContain(`${ESC}[1A`);
    expect(r.out).toMatch(/copied 301 entries \(300 files/);
    expect(r.out.length).toBeLessThan(1000);
  });
});
