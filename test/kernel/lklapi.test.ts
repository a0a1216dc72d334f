/**
 * LKL's C API: lkl-build/tests/lklapi.c is written as LKL programs are
 * (only <lkl.h> and <lkl_host.h>, the classic path-based calls,
 * lkl_mount_fs, directory streams) and must compile and run unchanged.
 * What it leaves in the image is read back with debugfs, not through the
 * kernel that wrote it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectAllOk, haveTool, inScratch, repoRoot, run, sh } from './harness.js';

const need = (...tools: string[]) => (tools.every(haveTool) ? test : test.skip);

interface Entry {
  ino: number;
  mode: string;
  uid: number;
  gid: number;
  size: number;
}

/** debugfs "ls -l DIR": name -> inode, octal mode with type, owner, size. */
function listing(image: string, dir: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  for (const line of sh('debugfs', ['-R', `ls -l ${dir}`, image]).stdout.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+\(\d+\)\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s+(.+)$/.exec(line);
    if (m) {
      const [, ino, mode, uid, gid, size, name] = m;
      entries.set(name!, { ino: Number(ino), mode: mode!, uid: Number(uid), gid: Number(gid), size: Number(size) });
    }
  }
  return entries;
}

describe("LKL's C API", () => {
  test('the test program includes nothing of the library but lkl.h and lkl_host.h', () => {
    const source = readFileSync(join(repoRoot, 'lkl-build/tests/lklapi.c'), 'utf8');
    const includes = [...source.matchAll(/^#\s*include\s*[<"]([^>"]+)[>"]/gm)].map((m) => m[1]);
    expect(includes.filter((h) => /lkl/.test(h!))).toEqual(['lkl.h', 'lkl_host.h']);
    expect(source).not.toMatch(/^#\s*define\s+_*LKL/m);
  });

  need('mkfs.ext4', 'debugfs', 'e2fsck')(
    'an LKL program builds a tree with the path-based calls; debugfs finds it as made',
    () => {
      return inScratch('lklapi', async (dir) => {
        const img = join(dir, 'ext4.img');
        sh('truncate', ['-s', '64M', img]);
        sh('mkfs.ext4', ['-q', '-F', img]);
        expectAllOk(run('lklapi', [img]), [
          'lkl_mount_fs',
          'lkl_sys_umount',
          'lkl_mount_dev',
          'mkdir',
          'open, write, read, fstat',
          'creat',
          'symlink, readlink, lstat, fstatat',
          'link, rename, access',
          'chmod, chown',
          'mknod',
          'utimes',
          'unlink, rmdir',
          'opendir, readdir',
          'pipe, poll, select',
          'umount',
          'halt',
        ]);
        sh('e2fsck', ['-fn', img]);

        const root = listing(img, '/');
        expect(root.get('dir')?.mode).toBe('40750');
        expect(root.has('proc') || root.has('nosuchfs')).toBe(false);
        const d = listing(img, '/dir');
        expect([...d.keys()].sort()).toEqual(['.', '..', 'empty', 'fifo', 'file', 'hard2', 'link', 'null']);
        expect(d.get('file')).toMatchObject({ mode: '100604', uid: 42, gid: 43, size: 11 });
        expect(d.get('hard2')?.ino).toBe(d.get('file')?.ino);
        expect(d.get('empty')).toMatchObject({ mode: '100600', uid: 0, size: 0 });
        expect(d.get('link')).toMatchObject({ mode: '120777', uid: 0 });
        expect(d.get('fifo')?.mode).toBe('10644');
        expect(d.get('null')?.mode).toBe('20666');

        expect(sh('debugfs', ['-R', 'cat /dir/hard2', img]).stdout).toBe('hello, lkl\n');
        const file = sh('debugfs', ['-R', 'stat /dir/file', img]).stdout;
        // 1000000000.5 and 1234567890.00025: seconds, then nanoseconds << 2.
        expect(file).toMatch(/ atime: 0x3b9aca00:77359400 /);
        expect(file).toMatch(/ mtime: 0x499602d2:000f4240 /);
        expect(sh('debugfs', ['-R', 'stat /dir/link', img]).stdout).toMatch(/Fast link dest: "file"/);
        expect(sh('debugfs', ['-R', 'stat /dir/null', img]).stdout).toMatch(/Device major\/minor number: 01:03/);
      });
    },
  );
});
