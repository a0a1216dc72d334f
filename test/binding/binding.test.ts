/**
 * The native binding, from Node: each case is a small ESM script run in a
 * fresh node process (a kernel boots once per process), importing the
 * compiled engine from dist/.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inScratch, repoRoot, sh } from '../kernel/harness.js';

/** Runs script (ESM) with IMG set to a fresh ext4 image (64M unless told); returns its JSON. */
function runScript(dir: string, script: string, env: NodeJS.ProcessEnv = {}, image = { size: '64M', mkfs: [] as string[] }) {
  const img = join(dir, 'fs.img');
  sh('truncate', ['-s', image.size, img]);
  sh('mkfs.ext4', ['-q', '-F', ...image.mkfs, img]);
  const file = join(dir, 'case.mjs');
  const prelude = `
    import { binding } from '${repoRoot}/dist/src/kernel/binding.js';
    import { Kernel } from '${repoRoot}/dist/src/kernel/kernel.js';
    const IMG = ${JSON.stringify(img)};
    const out = (v) => process.stdout.write(JSON.stringify(v, (k, x) => typeof x === 'bigint' ? x.toString() : x) + '\\n');
    // Most cases: the kernel booted and the image mounted read-write.
    const mounted = async () => {
      const k = await Kernel.boot({ memMiB: 64 });
      const m = await k.mount(IMG, { fsType: 'ext4', readOnly: false });
      return { k, m, b: binding() };
    };
  `;
  writeFileSync(file, prelude + script);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { ...r, img, json: r.stdout.trim() ? r.stdout.trim().split('\n').map((l) => JSON.parse(l)) : [] };
}

describe('native binding', () => {
  test('kernel errors are Node-style errors with code, errno, syscall and path', () =>
    inScratch('binding-errors', (dir) => {
      const r = runScript(
        dir,
        `
        const { k, m } = await mounted();
        const grab = async (p) => { try { await p; return null; } catch (e) { return { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path }; } };
        out(await grab(binding().lstat(m.path('/missing'))));
        out(await grab(binding().mkdir(m.path('/lost+found'), 0o755)));
        out(await grab(binding().open(m.path('/lost+found'), binding().constants.O_WRONLY, 0)));
        let typeError = null;
        try { binding().lstat(42); } catch (e) { typeError = e.constructor.name + ': ' + e.message; }
        out(typeError);
        await k.halt();
      `,
      );
      expect(r.stderr).toBe('');
      const [missing, exists, isDir, typeError] = r.json;
      expect(missing).toEqual({
        message: "ENOENT: no such file or directory, lstat '/mnt/lkl0p0/missing'",
        code: 'ENOENT',
        errno: -2,
        syscall: 'lstat',
        path: '/mnt/lkl0p0/missing',
      });
      expect(exists).toMatchObject({ code: 'EEXIST', errno: -17, syscall: 'mkdir' });
      expect(isDir).toMatchObject({ code: 'EISDIR', errno: -21, syscall: 'open' });
      expect(typeError).toBe('TypeError: argument 0 must be a path (string or Buffer)');
    }));

  test('batch: runs in order, tolerant ops pass EPERM, the first real failure stops it', () =>
    inScratch('binding-batch', (dir) => {
      const r = runScript(
        dir,
        `
        const { k, m, b } = await mounted();
        out(await b.batch([
          ['mkdir', false, m.path('/d'), 0o755],
          ['mknod', false, m.path('/d/fifo'), 0o010644, 0, 0],
          ['lutimes', true, m.path('/d/fifo'), 1000000000123456789n, 1000000000123456789n],
          ['link', true, m.path('/dir-link'), m.path('/d')],
          ['mkdir', false, m.path('/d'), 0o755],
          ['chmod', false, m.path('/d'), 0o700],
        ]));
        out((await b.lstat(m.path('/d/fifo'))).mtimeNs);
        out((await b.lstat(m.path('/d'))).mode & 0o7777);
        await k.halt();
      `,
      );
      expect(r.stderr).toBe('');
      const [batch, mtime, mode] = r.json;
      // A hard link to a directory is EPERM, tolerated; the second mkdir
      // fails with EEXIST and stops the batch: no chmod.
      expect(batch).toEqual({ results: [0, 0, 0, -1, -17] });
      expect(mtime).toBe('1000000000123456789');
      expect(mode).toBe(0o755);
    }));

  test('TarCopyIn: steps stop for a parent the archive lacks and an entry in the way; a cut archive ends with where', () =>
    inScratch('binding-tar-in', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(join(src, 'a/b'), { recursive: true });
      writeFileSync(join(src, 'a/b/f'), 'f\n');
      writeFileSync(join(src, 'x'), Buffer.alloc(2000, 0x78));
      const tar = join(dir, 'a.tar');
      // Members only, no directory entries: a/b is the image's to give.
      sh('tar', ['--format=ustar', '-cf', tar, '-C', src, 'a/b/f', 'x']);
      const cut = join(dir, 'cut.tar');
      writeFileSync(cut, readFileSync(tar).subarray(0, 2000));
      const r = runScript(
        dir,
        `
        import { openSync } from 'node:fs';
        const { k, m, b } = await mounted();
        await b.mkdir(m.path('/a'), 0o755);
        const x = await b.open(m.path('/x'), b.constants.O_WRONLY | b.constants.O_CREAT, 0o644);
        await b.close(x);
        const unpack = async (file, dest) => {
          const job = new b.TarCopyIn(openSync(file, 'r'), true, 'test.tar', m.path(dest), { uid: -1, gid: -1, xattrs: true, whiteouts: false, listCreated: true });
          const seen = [];
          let resume;
          for (;;) {
            const s = await job.step(resume);
            seen.push({ created: s.created.map((p) => p.toString()), parent: s.parent?.toString(), stop: s.stop && [s.stop.errno, s.stop.syscall, s.stop.create], error: s.archiveError, done: s.done });
            if (s.done || s.archiveError) break;
            if (s.parent) {
              const kernel = m.path((dest === '/' ? '' : dest) + '/' + s.parent.toString());
              await b.mkdir(kernel, 0o755);
              resume = { dir: [s.parent, kernel] };
            } else {
              await b.unlink(s.stop.path);
              resume = { action: 'retry' };
            }
          }
          await job.close();
          return seen;
        };
        out(await unpack(${JSON.stringify(tar)}, '/'));
        const x2 = Buffer.alloc(2000);
        const fd = await b.open(m.path('/x'), b.constants.O_RDONLY, 0);
        out(await b.read(fd, x2, 0, 2000, 0));
        await b.close(fd);
        await b.mkdir(m.path('/d'), 0o755);
        await b.mkdir(m.path('/d/a'), 0o755);
        out((await unpack(${JSON.stringify(cut)}, '/d')).at(-1));
        await k.halt();
      `,
      );
      expect(r.stderr).toBe('');
      const [steps, read, last] = r.json;
      const root = '/mnt/lkl0p0';
      expect(steps).toEqual([
        { created: [], parent: 'a/b', done: false },
        { created: [`${root}/a/b/f`], stop: [-17, 'open', true], done: false },
        { created: [`${root}/x`], done: true },
      ]);
      expect(read).toBe(2000);
      // What came before the cut is in; the step says what is wrong and where.
      expect(last).toEqual({
        created: [`${root}/d/a/b/f`],
        error: 'test.tar: truncated archive: entry x (header at byte 1024) is cut short: the archive ends at byte 2000, in its data',
        done: false,
      });
    }));

  test('copyIn keeps holes; copyOut brings the bytes back', () =>
    inScratch('binding-copy', (dir) => {
      const src = join(dir, 'sparse');
      sh('truncate', ['-s', '40M', src]);
      sh('dd', ['if=/dev/urandom', `of=${src}`, 'bs=1M', 'count=1', 'seek=20', 'conv=notrunc', 'status=none']);
      const back = join(dir, 'back');
      const r = runScript(
        dir,
        `
        const { k, m, b } = await mounted();
        out(await b.copyIn(${JSON.stringify(src)}, m.path('/sparse'), 0o600));
        const st = await b.lstat(m.path('/sparse'));
        out({ size: st.size, blocks: st.blocks });
        out(await b.copyOut(m.path('/sparse'), ${JSON.stringify(back)}, 0o600));
        await k.halt();
      `,
      );
      expect(r.stderr).toBe('');
      const [copied, st, copiedOut] = r.json;
      expect(copied).toBe(40 << 20);
      expect(st.size).toBe(40 << 20);
      expect(st.blocks * 512).toBeLessThan(2 << 20);
      expect(copiedOut).toBe(40 << 20);
      expect(sh('cmp', [src, back]).status).toBe(0);
      expect(Number(sh('stat', ['-c', '%b', back]).stdout) * 512).toBeLessThan(2 << 20);
      sh('e2fsck', ['-fn', r.img]);
    }));

  test('kernel calls do not wait for the libuv thread pool', () =>
    inScratch('binding-pool', (dir) => {
      const fifo = join(dir, 'fifo');
      sh('mkfifo', [fifo]);
      // The pool's only thread blocks opening a fifo nobody writes to.
      const r = runScript(
        dir,
        `
        import { readFile } from 'node:fs/promises';
        import { writeFileSync } from 'node:fs';
        readFile(${JSON.stringify(fifo)}).catch(() => {});
        const { k, m } = await mounted();
        await binding().mkdir(m.path('/made-while-the-pool-is-stuck'), 0o755);
        out((await binding().readdirStat(m.path('/'), false)).map((e) => e.name.toString()));
        await k.halt();
        // Frees the pool thread: node would not exit with it stuck.
        writeFileSync(${JSON.stringify(fifo)}, '');
      `,
        { UV_THREADPOOL_SIZE: '1' },
      );
      expect(r.status).toBe(0);
      expect(r.json[0]).toContain('made-while-the-pool-is-stuck');
    }));

  test('many calls in flight at once all complete, each with its own result (modes exact: umask 0)', () =>
    inScratch('binding-many', (dir) => {
      const r = runScript(
        dir,
        `
        const { k, m, b } = await mounted();
        await Promise.all(Array.from({ length: 200 }, (_, i) => b.mkdir(m.path('/d' + i), 0o700 + (i % 64))));
        const modes = await Promise.all(Array.from({ length: 200 }, (_, i) => b.lstat(m.path('/d' + i)).then((s) => s.mode & 0o777)));
        out(modes.every((mode, i) => mode === 0o700 + (i % 64)));
        await k.halt();
      `,
      );
      expect(r.stderr).toBe('');
      expect(r.json).toEqual([true]);
    }));

  test('an uncaught exception still leaves the filesystem unmounted and clean', () =>
    inScratch('binding-crash', (dir) => {
      const r = runScript(
        dir,
        `
        const { k, m } = await mounted();
        await binding().mkdir(m.path('/before-the-crash'), 0o755);
        const fd = await binding().open(m.path('/open-file'), binding().constants.O_CREAT | binding().constants.O_WRONLY, 0o644);
        await binding().write(fd, Buffer.from('data'), 0, 4, -1);
        throw new Error('the job blew up');
      `,
      );
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('the job blew up');
      sh('e2fsck', ['-fn', r.img]);
      expect(sh('debugfs', ['-R', 'cat /open-file', r.img]).stdout).toBe('data');
    }));

  test('reattachDisk: the kernel sees an image grown meanwhile; ioctl reaches the filesystem, errors named', () =>
    inScratch('binding-ioctl', (dir) => {
      const r = runScript(
        dir,
        `
        import { truncateSync } from 'node:fs';
        const { k, m, b } = await mounted();
        await b.mkdir(m.path('/kept'), 0o755);
        const size = async () => { const st = await b.statfs(m.path('/')); return st.blocks * st.blockSize; };
        const grab = async (p) => { try { await p; return null; } catch (e) { return { code: e.code, syscall: e.syscall }; } };
        const before = await size();
        // The file grows while the disk is attached and unmounted: the
        // kernel sees it once attached again.
        await k.remount(m, async () => truncateSync(IMG, 256 << 20));
        const root = await b.open(m.path('/'), b.constants.O_RDONLY | b.constants.O_DIRECTORY, 0);
        // EXT4_IOC_RESIZE_FS (_IOW('f', 16, __u64)): 256 MiB of 1 KiB blocks.
        const blocks = Buffer.alloc(8);
        blocks.writeBigUInt64LE(256n << 10n);
        out(await b.ioctl(root, 0x40086610, blocks));
        out([before, await size()]);
        out(await grab(b.ioctl(root, 0x40086699, Buffer.alloc(8))));
        await b.close(root);
        out((await b.lstat(m.path('/kept'))).mode.toString(8));
        out(await grab(b.reattachDisk(7)));
        await k.halt();
      `,
      );
      expect(r.stderr).toBe('');
      const [ret, [before, after], unknown, kept, noDisk] = r.json;
      expect(ret).toBe(0);
      expect(before).toBeLessThan(64 << 20);
      expect(after).toBeGreaterThan(200 << 20);
      expect(unknown).toEqual({ code: 'ENOTTY', syscall: 'ioctl' });
      expect(kept).toBe('40755');
      expect(noDisk).toEqual({ code: 'ENOENT', syscall: 'reattachDisk' });
      sh('e2fsck', ['-fn', r.img]);
      expect(sh('dumpe2fs', ['-h', r.img]).stdout).toMatch(/^Block count:\s+262144$/m);
    }));
});

test('a kernel panic ends the process with status 70 and the kernel’s last words on stderr', () =>
  inScratch('binding-panic', (dir) => {
    const r = runScript(dir, `await Kernel.boot({ memMiB: 1 });\nout('still running');`);
    expect(r.status).toBe(70);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/lklfs: the kernel panicked; its last messages:\n[\s\S]*is too small, the kernel needs at least 16M/);
  }));

test('big copies (both halves overlapped) keep bytes and holes, and name the side that failed', () =>
  inScratch('binding-bigcopy', (dir) => {
    // 24 MiB of data in three runs between holes, 64 MiB in all.
    const src = join(dir, 'big');
    sh('truncate', ['-s', '64M', src]);
    for (const at of [0, 20, 50])
      sh('dd', ['if=/dev/urandom', `of=${src}`, 'bs=1M', 'count=8', `seek=${at}`, 'conv=notrunc', 'status=none']);
    const back = join(dir, 'back');
    const r = runScript(
      dir,
      `
      const { k, m, b } = await mounted();
      out(await b.copyIn(${JSON.stringify(src)}, m.path('/big'), 0o600));
      const st = await b.lstat(m.path('/big'));
      out(st.blocks * 512);
      out(await b.copyOut(m.path('/big'), ${JSON.stringify(back)}, 0o600));
      // Too big for what is left of the image: the write side fails.
      await b.copyIn(${JSON.stringify(src)}, m.path('/again'), 0o600).catch(() => {});
      const e = await b.copyIn(${JSON.stringify(src)}, m.path('/third'), 0o600).then(() => null, (e) => ({ code: e.code, syscall: e.syscall, path: e.path }));
      out(e);
      await k.halt();
    `,
    );
    expect(r.stderr).toBe('');
    const [copied, allocated, copiedOut, failure] = r.json;
    expect(copied).toBe(64 << 20);
    expect(allocated).toBeLessThan(26 << 20);
    expect(copiedOut).toBe(64 << 20);
    expect(sh('cmp', [src, back]).status).toBe(0);
    expect(Number(sh('stat', ['-c', '%b', back]).stdout) * 512).toBeLessThan(26 << 20);
    expect(failure).toEqual({ code: 'ENOSPC', syscall: 'write', path: '/mnt/lkl0p0/third' });
    sh('e2fsck', ['-fn', r.img]);
  }));

test('cancel(): a copy in flight and the batches after it stop with ECANCELED', () =>
  inScratch('binding-cancel', (dir) => {
    const src = join(dir, 'data');
    sh('dd', ['if=/dev/urandom', `of=${src}`, 'bs=1M', 'count=16', 'status=none']);
    const r = runScript(
      dir,
      `
      const { k, m, b } = await mounted();
      out(await b.copyIn(${JSON.stringify(src)}, m.path('/before'), 0o600));
      const copy = b.copyIn(${JSON.stringify(src)}, m.path('/during'), 0o600);
      b.cancel();
      out(await copy.then(() => null, (e) => e.code));
      out((await b.lstat(m.path('/during'))).size < 16 << 20);
      out(await b.batch([['mkdir', false, m.path('/after'), 0o755]]));
      await k.halt();
    `,
    );
    expect(r.stderr).toBe('');
    expect(r.json).toEqual([16 << 20, 'ECANCELED', true, { results: [-125] }]);
    sh('e2fsck', ['-fn', r.img]);
  }));

test('readTar: an entry whose headers outgrow the Buffer asks for a larger one, and the archive goes on', () =>
  inScratch('binding-tar-need', (dir) => {
    // A byte every 8 KiB, 12,000 times: a sparse map of some 170 KB, more
    // than the 128 KiB Buffers the archive is read into here.
    const src = join(dir, 'holes');
    sh('python3', ['-c', 'import sys\nwith open(sys.argv[1], "wb") as f:\n    for i in range(12000): f.seek(i * 8192); f.write(b"x")', src]);
    const archive = join(dir, 'out.tar');
    const r = runScript(
      dir,
      `
      import { writeFileSync } from 'node:fs';
      const { k, m, b } = await mounted();
      await b.copyIn(${JSON.stringify(src)}, m.path('/holes'), 0o644);
      const tar = b.openTar(m.path('/'), 256 << 10, false, m.disk, 0);
      let buf = Buffer.alloc(128 << 10);
      const pieces = [];
      const needs = [];
      for (;;) {
        const r = await b.readTar(tar, buf);
        if (r.need) {
          needs.push(r.need);
          buf = Buffer.alloc(r.need);
          continue;
        }
        pieces.push(Buffer.from(buf.subarray(0, r.used)));
        if (r.done) break;
      }
      await b.closeTar(tar);
      writeFileSync(${JSON.stringify(archive)}, Buffer.concat(pieces));
      out(needs.length);
      await k.halt();
    `,
    );
    expect(r.stderr).toBe('');
    expect(r.json[0]).toBeGreaterThan(0);
    const out = join(dir, 'out');
    sh('mkdir', [out]);
    sh('tar', ['-xf', archive, '-C', out]);
    expect(sh('cmp', [src, join(out, 'holes')]).status).toBe(0);
  }));

test('readTar: file data read from the image on the host (ext4, read-only) is what the kernel reads, inline files read by the kernel; queued fills come in order', () =>
  inScratch('binding-tar-direct', (dir) => {
    const src = join(dir, 'src');
    mkdirSync(src);
    const dd = (name: string, args: string[]) => sh('dd', ['if=/dev/urandom', `of=${join(src, name)}`, 'status=none', 'conv=notrunc', ...args]);
    dd('small', ['bs=5000', 'count=1']);
    // Read whole with its headers: data, a hole, data.
    dd('holes', ['bs=4096', 'count=2']);
    dd('holes', ['bs=4096', 'count=2', 'seek=40']);
    // Read in pieces over several Buffers.
    dd('big', ['bs=1M', 'count=3']);
    // Archived as GNU sparse: 8 MiB, data at 1 and 6 MiB.
    dd('sparse', ['bs=1M', 'count=1', 'seek=1']);
    dd('sparse', ['bs=1M', 'count=1', 'seek=6']);
    sh('truncate', ['-s', '8M', join(src, 'sparse')]);
    writeFileSync(join(src, 'empty'), '');
    writeFileSync(join(dir, 'hello'), 'hello');
    const img = join(dir, 'direct.img');
    sh('truncate', ['-s', '64M', img]);
    sh('mkfs.ext4', ['-q', '-F', '-b', '4096', '-d', src, img]);
    // "unwritten": 39 blocks allocated and never written (they read as
    // zeros), though the disk holds other bytes there.
    sh('debugfs', ['-w', '-R', `write ${join(dir, 'hello')} unwritten`, img]);
    sh('debugfs', ['-w', '-R', 'fallocate /unwritten 1 39', img]);
    sh('debugfs', ['-w', '-R', 'sif /unwritten size 163840', img]);
    const extents = sh('debugfs', ['-R', 'ex /unwritten', img]).stdout;
    const uninit = /^\s*\d+\/\s*\d+\s+\d+\/\s*\d+\s+1 -\s+39\s+(\d+) -\s+\d+\s+39 Uninit$/m.exec(extents);
    expect(uninit).not.toBeNull();
    sh('sh', ['-c', `head -c ${39 * 4096} /dev/zero | tr '\\0' '\\377' | dd of=${img} bs=4096 seek=${uninit?.[1]} conv=notrunc status=none`]);
    sh('e2fsck', ['-fn', img]);
    // Files stored in their inode (inline_data) are read by the kernel.
    const inlineSrc = join(dir, 'inline-src');
    mkdirSync(inlineSrc);
    writeFileSync(join(inlineSrc, 'tiny'), 'tiny');
    sh('dd', ['if=/dev/urandom', `of=${join(inlineSrc, 'big')}`, 'bs=100000', 'count=1', 'status=none']);
    const inlineImg = join(dir, 'inline.img');
    sh('truncate', ['-s', '16M', inlineImg]);
    sh('mkfs.ext4', ['-q', '-F', '-O', 'inline_data', '-d', inlineSrc, inlineImg]);

    const r = runScript(
      dir,
      `
      import { createHash } from 'node:crypto';
      import { writeFileSync } from 'node:fs';
      const k = await Kernel.boot({ memMiB: 64 });
      let m = await k.mount(${JSON.stringify(img)}, { fsType: 'ext4', readOnly: true });
      const b = binding();
      // The archive with depth fills queued at once, into Buffers that
      // hold any of these files whole.
      async function archive(disk, start, depth) {
        const tar = b.openTar(m.path('/'), 256 << 10, false, disk, start);
        const queue = [];
        const fill = () => {
          const buf = Buffer.alloc(512 << 10);
          queue.push({ buf, filled: b.readTar(tar, buf) });
        };
        for (let i = 0; i < depth; i++) fill();
        const pieces = [];
        let last;
        for (;;) {
          const { buf, filled } = queue.shift();
          last = await filled;
          pieces.push(Buffer.from(buf.subarray(0, last.used)));
          if (last.done) break;
          fill();
        }
        await Promise.all(queue.map((q) => q.filled));
        await b.closeTar(tar);
        const all = Buffer.concat(pieces);
        return { all, sha: createHash('sha256').update(all).digest('hex'), bytes: last.bytes, direct: last.direct };
      }
      const host = await archive(m.disk, 0, 3);
      writeFileSync(${JSON.stringify(join(dir, 'out.tar'))}, host.all);
      const kernel = await archive(-1, 0, 1);
      // A filesystem start that is wrong: the first file's check against
      // the kernel's read finds it, and the kernel reads everything.
      const wrong = await archive(m.disk, 4096, 2);
      for (const a of [host, kernel, wrong]) out({ sha: a.sha, bytes: a.bytes, direct: a.direct });
      m = await k.mount(${JSON.stringify(inlineImg)}, { fsType: 'ext4', readOnly: true });
      for (const a of [await archive(m.disk, 0, 2), await archive(-1, 0, 2)]) out({ sha: a.sha, bytes: a.bytes, direct: a.direct });
      await k.halt();
    `,
    );
    expect(r.stderr).toBe('');
    const [host, kernel, wrong, inlineHost, inlineKernel] = r.json;
    // Files read whole count their holes; the sparse one only its data.
    expect(host.bytes).toBe(5000 + 42 * 4096 + (3 << 20) + (2 << 20) + 163840);
    expect(host.direct).toBe(host.bytes);
    expect(kernel).toEqual({ ...host, direct: 0 });
    expect(wrong).toEqual({ ...host, direct: 0 });
    expect(inlineHost).toEqual({ ...inlineKernel, direct: 100000 });
    expect(inlineKernel.bytes).toBe(100004);

    const out = join(dir, 'out');
    mkdirSync(out);
    sh('tar', ['-xf', join(dir, 'out.tar'), '-C', out]);
    for (const f of ['small', 'holes', 'big', 'sparse', 'empty']) expect(sh('cmp', [join(src, f), join(out, f)]).status).toBe(0);
    const unwritten = readFileSync(join(out, 'unwritten'));
    expect(unwritten.length).toBe(163840);
    expect(unwritten.subarray(0, 5).toString()).toBe('hello');
    expect(unwritten.subarray(5).every((x) => x === 0)).toBe(true);
  }));

test('readTar on XFS (read-only): file data read from the image on the host is what the kernel reads', () =>
  inScratch('binding-tar-direct-xfs', (dir) => {
    const src = join(dir, 'src');
    mkdirSync(src);
    const dd = (name: string, args: string[]) => sh('dd', ['if=/dev/urandom', `of=${join(src, name)}`, 'status=none', 'conv=notrunc', ...args]);
    dd('small', ['bs=5000', 'count=1']);
    dd('big', ['bs=1M', 'count=3']);
    dd('sparse', ['bs=1M', 'count=1', 'seek=1']);
    sh('truncate', ['-s', '8M', join(src, 'sparse')]);
    const img = join(dir, 'xfs.img');
    sh('truncate', ['-s', '320M', img]);
    sh('mkfs.xfs', ['-q', '-f', img]);
    const r = runScript(
      dir,
      `
      import { createHash } from 'node:crypto';
      const k = await Kernel.boot({ memMiB: 64 });
      const b = binding();
      let m = await k.mount(${JSON.stringify(img)}, { fsType: 'xfs', readOnly: false });
      for (const f of ['small', 'big', 'sparse']) await b.copyIn(${JSON.stringify(src)} + '/' + f, m.path('/' + f), 0o644);
      await k.unmount(m);
      m = await k.mount(${JSON.stringify(img)}, { fsType: 'xfs', readOnly: true });
      async function archive(disk) {
        const tar = b.openTar(m.path('/'), 256 << 10, false, disk, 0);
        const pieces = [];
        let last;
        do {
          const buf = Buffer.alloc(1 << 20);
          last = await b.readTar(tar, buf);
          pieces.push(buf.subarray(0, last.used));
        } while (!last.done);
        await b.closeTar(tar);
        return { sha: createHash('sha256').update(Buffer.concat(pieces)).digest('hex'), bytes: last.bytes, direct: last.direct };
      }
      out(await archive(m.disk));
      out(await archive(-1));
      await k.halt();
    `,
    );
    expect(r.stderr).toBe('');
    const [host, kernel] = r.json;
    expect(host.bytes).toBe(5000 + (3 << 20) + (1 << 20));
    expect(host.direct).toBe(host.bytes);
    expect(kernel).toEqual({ ...host, direct: 0 });
  }));

test('writeTar of a GPT partition: file data read from the image on the host at the partition\'s offset, the archive the kernel\'s', () =>
  inScratch('binding-tar-partition', (dir) => {
    const src = join(dir, 'src');
    mkdirSync(src);
    sh('dd', ['if=/dev/urandom', `of=${join(src, 'data')}`, 'bs=1M', 'count=2', 'status=none']);
    writeFileSync(join(src, 'note'), 'a note\n');
    const fs = join(dir, 'fs.ext4');
    sh('truncate', ['-s', '16M', fs]);
    sh('mkfs.ext4', ['-q', '-F', '-d', src, fs]);
    // Partition 2 of a GPT image holds it, 3 MiB in.
    const img = join(dir, 'disk.img');
    sh('truncate', ['-s', '24M', img]);
    sh('sh', ['-c', `printf 'label: gpt\\nstart=2048, size=4096\\nstart=6144, size=32768\\n' | sfdisk -q ${img}`]);
    sh('dd', [`if=${fs}`, `of=${img}`, 'bs=512', 'seek=6144', 'conv=notrunc', 'status=none']);

    const r = runScript(
      dir,
      `
      import { createHash } from 'node:crypto';
      import { writeTar } from '${repoRoot}/dist/src/engine/tar-out.js';
      const k = await Kernel.boot({ memMiB: 64 });
      const m = await k.mount(${JSON.stringify(img)}, { fsType: 'ext4', partition: 2, readOnly: true });
      const b = binding();
      // The binding's last totals, as writeTar sees them.
      const readTar = b.readTar.bind(b);
      let last;
      b.readTar = (tar, buf) => readTar(tar, buf).then((t) => (last = t));
      const pieces = [];
      await writeTar(m, async (chunk) => void pieces.push(Buffer.from(chunk)));
      const ours = createHash('sha256').update(Buffer.concat(pieces)).digest('hex');
      out({ bytes: last.bytes, direct: last.direct });
      // The kernel's own reads of the same tree.
      const tar = b.openTar(m.path('/'), 256 << 10, false, -1, 0);
      const all = [];
      for (;;) {
        const buf = Buffer.alloc(1 << 20);
        const t = await readTar(tar, buf);
        all.push(buf.subarray(0, t.used));
        if (t.done) break;
      }
      await b.closeTar(tar);
      out(createHash('sha256').update(Buffer.concat(all)).digest('hex') === ours);
      await k.halt();
    `,
    );
    expect(r.stderr).toBe('');
    expect(r.json).toEqual([{ bytes: (2 << 20) + 7, direct: (2 << 20) + 7 }, true]);
  }));

test('TreeCopyIn: steps of a tree bigger than a step and data bigger than the ring; stops where told to decide, resumes as told', () =>
  inScratch('binding-tree', (dir) => {
    // 5,000 empty files (more than a step takes), 9 MiB of data (more
    // than the read-ahead ring holds), a sparse file ending in a hole.
    const src = join(dir, 'src');
    mkdirSync(join(src, 'many'), { recursive: true });
    for (let i = 0; i < 5000; i++) writeFileSync(join(src, 'many', `f${i}`), '');
    sh('dd', ['if=/dev/urandom', `of=${join(src, 'big')}`, 'bs=1M', 'count=9', 'status=none']);
    sh('truncate', ['-s', '6M', join(src, 'sparse')]);
    sh('dd', ['if=/dev/urandom', `of=${join(src, 'sparse')}`, 'bs=1M', 'count=1', 'seek=2', 'conv=notrunc', 'status=none']);
    writeFileSync(join(src, 'taken'), 'x');
    const r = runScript(
      dir,
      `
      const { k, m, b } = await mounted();
      // In the way: the root and /many (directories: merged), /big (a file:
      // removed, then retried), /taken (a directory where a file comes: skipped).
      await b.mkdir(m.path('/many'), 0o700);
      await b.close(await b.open(m.path('/big'), b.constants.O_WRONLY | b.constants.O_CREAT, 0o644));
      await b.mkdir(m.path('/taken'), 0o755);
      const job = new b.TreeCopyIn([[${JSON.stringify(src)}, m.path('/')]], { uid: -1, gid: -1, xattrs: true, listCreated: true });
      const stops = [];
      let steps = 0, created = 0, resume, last;
      for (;;) {
        last = await job.step(resume);
        steps++;
        created += last.created.length;
        resume = undefined;
        if (last.stop) {
          const s = last.stop, where = m.imagePath(s.path).toString();
          stops.push({ where, errno: s.errno, syscall: s.syscall, create: s.create, dir: (s.mode & 0o170000) === 0o040000 });
          if (where === '/big') await b.unlink(s.path);
          resume = where === '/big' ? 'retry' : where === '/taken' ? 'skip' : 'merge';
        } else if (last.done) break;
      }
      await job.close();
      out({ steps, stops, totals: last.totals, created });
      out((await b.readdirStat(m.path('/many'), false)).length);
      out((await b.lstat(m.path('/taken'))).mode & 0o170000);
      const sparse = await b.lstat(m.path('/sparse'));
      out({ size: sparse.size, allocated: sparse.blocks * 512 });
      out(await b.copyOut(m.path('/big'), ${JSON.stringify(join(dir, 'big-back'))}, 0o600));
      out(await b.copyOut(m.path('/sparse'), ${JSON.stringify(join(dir, 'sparse-back'))}, 0o600));
      // A host failure stops the step too, naming the host path.
      const missing = new b.TreeCopyIn([[${JSON.stringify(join(dir, 'missing'))}, m.path('/x')]], { uid: -1, gid: -1, xattrs: true, listCreated: false });
      const failed = await missing.step();
      await missing.close();
      out({ ...failed.stop, path: failed.stop.path.toString() });
      await k.halt();
    `,
    );
    expect(r.stderr).toBe('');
    const [job, many, taken, sparse, big, sparseBack, failed] = r.json;
    expect(job.stops).toEqual([
      { where: '/', errno: -17, syscall: 'mkdir', create: true, dir: true },
      { where: '/big', errno: -17, syscall: 'open', create: true, dir: false },
      { where: '/many', errno: -17, syscall: 'mkdir', create: true, dir: true },
      { where: '/taken', errno: -17, syscall: 'open', create: true, dir: false },
    ]);
    // Every entry but /taken: the root, many/ and its files, big, sparse.
    expect(job.totals).toEqual({ entries: 5004, files: 5002, bytes: (9 << 20) + (6 << 20), hardlinks: 0 });
    expect(job.created).toBe(5004);
    expect(job.steps).toBeGreaterThan(5);
    expect(many).toBe(5000);
    expect(taken).toBe(0o040000);
    expect(sparse.size).toBe(6 << 20);
    expect(sparse.allocated).toBeLessThan(2 << 20);
    expect([big, sparseBack]).toEqual([9 << 20, 6 << 20]);
    expect(sh('cmp', [join(src, 'big'), join(dir, 'big-back')]).status).toBe(0);
    expect(sh('cmp', [join(src, 'sparse'), join(dir, 'sparse-back')]).status).toBe(0);
    expect(failed).toEqual({ errno: -2, syscall: 'lstat', path: join(dir, 'missing'), create: false, host: true, mode: 0, bytes: 0 });
    sh('e2fsck', ['-fn', r.img]);
  }));

test('TreeCopyIn: a stop at a full filesystem leaves nothing open; grown (unmounted and mounted again), the retry goes on from the failed write; an SELinux label on everything', () =>
  inScratch('binding-tree-full', (dir) => {
    // a: one entry with its data (under the 1 MiB piece size); b: 24 MiB
    // in pieces, more than the 4 MiB ring: its first pieces are gone from
    // the ring when the filesystem fills up.
    const src = join(dir, 'src');
    mkdirSync(join(src, 'd'), { recursive: true });
    sh('dd', ['if=/dev/urandom', `of=${join(src, 'a')}`, 'bs=1K', 'count=900', 'status=none']);
    sh('dd', ['if=/dev/urandom', `of=${join(src, 'b')}`, 'bs=1M', 'count=24', 'status=none']);
    writeFileSync(join(src, 'd', 'c'), 'c\n');
    sh('ln', ['-s', 'd/c', join(src, 'link')]);
    const label = 'system_u:object_r:etc_t:s0';
    const r = runScript(
      dir,
      `
      import { growMounted } from '${repoRoot}/dist/src/engine/grow.js';
      const { k, m, b } = await mounted();
      // All but 300 KiB taken: a is cut short, then b.
      const st = await b.statfs(m.path('/'));
      const fd = await b.open(m.path('/filler'), b.constants.O_WRONLY | b.constants.O_CREAT, 0o644);
      const mib = Buffer.alloc(1 << 20, 1);
      for (let left = st.blocksAvailable * st.blockSize - 300 * 1024; left > 0; left -= mib.length)
        await b.write(fd, mib, 0, Math.min(left, mib.length), -1);
      await b.close(fd);
      const job = new b.TreeCopyIn([[${JSON.stringify(src)}, m.path('/t')]], {
        uid: -1, gid: -1, xattrs: true, selinux: Buffer.from(${JSON.stringify(label)}), listCreated: false,
      });
      const stops = [];
      let resume, last;
      for (;;) {
        last = await job.step(resume);
        resume = undefined;
        if (last.stop) {
          const s = last.stop;
          stops.push({ where: m.imagePath(s.path).toString(), errno: s.errno, syscall: s.syscall, create: s.create, host: s.host, bytes: s.bytes, taken: last.taken });
          // Unmounting needs every descriptor closed: the stop left none.
          await growMounted(m, { relative: true, bytes: (stops.length === 1 ? 8 : 64) << 20 });
          resume = 'retry';
        } else if (last.done) break;
      }
      await job.close();
      out({ stops, totals: last.totals });
      for (const name of ['a', 'b']) out(await b.copyOut(m.path('/t/' + name), ${JSON.stringify(dir)} + '/' + name + '-back', 0o600));
      const labels = [];
      for (const p of ['/t', '/t/a', '/t/b', '/t/d', '/t/d/c', '/t/link'])
        labels.push((await b.getXattrs(m.path(p))).filter((x) => x.name === 'security.selinux').map((x) => x.value.toString()));
      out(labels);
      await k.halt();
    `,
      {},
      { size: '16M', mkfs: ['-m', '0'] },
    );
    expect(r.stderr).toBe('');
    const [job, a, bBytes, labels] = r.json;
    const MiB = 1 << 20;
    // a's create went through, its write did not; b's after some pieces.
    expect(job.stops).toHaveLength(2);
    expect(job.stops[0]).toEqual({ where: '/t/a', errno: -28, syscall: 'write', create: false, host: false, bytes: 900 * 1024, taken: 1 });
    expect(job.stops[1]).toMatchObject({ where: '/t/b', errno: -28, syscall: 'write', create: false, host: false, bytes: 24 * MiB });
    expect(job.stops[1].taken).toBeGreaterThan(4);
    expect(job.totals).toEqual({ entries: 6, files: 3, bytes: 900 * 1024 + 24 * MiB + 2, hardlinks: 0 });
    expect([a, bBytes]).toEqual([900 * 1024, 24 * MiB]);
    expect(sh('cmp', [join(src, 'a'), join(dir, 'a-back')]).status).toBe(0);
    expect(sh('cmp', [join(src, 'b'), join(dir, 'b-back')]).status).toBe(0);
    expect(labels).toEqual(Array(6).fill([label]));
    sh('e2fsck', ['-fn', r.img]);
  }));
