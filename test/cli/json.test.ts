/**
 * --json: every command's output validates against its schema in
 * schemas/, failures come out as the error schema with the usual exit
 * status, and what the JSON says agrees with the tree it describes.
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { haveTool, inScratch, repoRoot, sh } from '../kernel/harness.js';
import { expectOk, lklfs, snapshot, type CliResult } from './cli.js';
import { makeRichTree } from './rich-tree.js';
import { fuseUnavailable } from './fuse.js';

const schemaDir = join(repoRoot, 'schemas');
const ajv = new Ajv2020({ allErrors: true, strict: true });
for (const f of readdirSync(schemaDir)) ajv.addSchema(JSON.parse(readFileSync(join(schemaDir, f), 'utf8')));
const validator = (name: string): ValidateFunction => {
  const v = ajv.getSchema(`https://lklfs.dev/schemas/${name}.json`);
  if (!v) throw new Error(`no schema schemas/${name}.json`);
  return v;
};

/** The JSON a run printed, after checking it against the command's schema (or the error schema). */
function output(r: CliResult, schema: string): any {
  const doc = JSON.parse(r.stdout.toString());
  const v = validator(r.status === 0 ? schema : 'error');
  if (!v(doc)) throw new Error(`${schema}: ${ajv.errorsText(v.errors)}\n${r.stdout.toString().slice(0, 2000)}`);
  return doc;
}

/** RFC 3339 with nanoseconds, worked out here from a host stat's nanoseconds. */
function rfc3339(ns: bigint): string {
  const s = ns / 1_000_000_000n;
  return `${new Date(Number(s) * 1000).toISOString().slice(0, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}

const commands = Object.keys(JSON.parse(readFileSync(join(repoRoot, 'oclif.manifest.json'), 'utf8')).commands as object);

describe('--json', () => {
  test.each(commands)('%s has a schema, and takes --json', (id) => {
    expect(() => validator(id)).not.toThrow();
    const help = lklfs([id, '--help']);
    expectOk(help);
    expect(help.stdout.toString()).toMatch(/--json/);
  });

  test('the schemas have teeth: a wrong document does not pass', () => {
    const ls = validator('ls');
    const good = { entries: [{ path: '/a', type: 'file', mode: 420, uid: 0, gid: 0, size: 1, nlink: 1, ino: '12', atime: '2020-01-01T00:00:00.000000000Z', mtime: '2020-01-01T00:00:00.000000000Z', ctime: '2020-01-01T00:00:00.000000000Z', xattrs: [] }] };
    expect(ls(good)).toBe(true);
    expect(ls({ entries: [{ ...good.entries[0], mode: '0644' }] })).toBe(false);
    expect(ls({ entries: [{ ...good.entries[0], mtime: '2020-01-01T00:00:00Z' }] })).toBe(false);
    expect(validator('error')({ error: { message: 'x', exitCode: 0 } })).toBe(false);
  });

  (haveTool('mkfs.ext4') && haveTool('setfattr') && haveTool('setfacl') ? test : test.skip)(
    'copy commands, ls, cat and fs2tar on a rich tree; errors',
    () =>
      inScratch('json', (dir) => {
        const src = join(dir, 'src');
        mkdirSync(src);
        makeRichTree(src);
        const img = join(dir, 'fs.img');
        sh('truncate', ['-s', '128M', img]);
        sh('mkfs.ext4', ['-q', img]);

        const want = snapshot(src);
        const copied = output(lklfs(['cptofs', '-i', img, '--json', `${src}/.`, '/']), 'cptofs');
        // Every entry, the root included (a socket too: cptofs copies it).
        expect(copied.entries).toBe(want.size);
        expect(copied.warnings).toEqual([]);

        const listed = output(lklfs(['ls', '-i', img, '--json', '-R', '-a', '/']), 'ls');
        const entries = (listed.entries as any[]).filter((e) => !e.path.startsWith('/lost+found'));
        expect(entries).toHaveLength(want.size - 1);
        for (const e of entries) {
          const bytes = e.pathBase64 ? Buffer.from(e.pathBase64, 'base64') : Buffer.from(e.path);
          const host = Buffer.concat([Buffer.from(src), bytes]);
          const st = lstatSync(host, { bigint: true });
          const what = host.toString('latin1');
          expect({ what, uid: e.uid, gid: e.gid, mtime: e.mtime }).toEqual({ what, uid: Number(st.uid), gid: Number(st.gid), mtime: rfc3339(st.mtimeNs) });
          if (e.type !== 'symlink') expect({ what, mode: e.mode }).toEqual({ what, mode: Number(st.mode & 0o7777n) });
          if (e.type === 'file') expect({ what, size: e.size, nlink: e.nlink }).toEqual({ what, size: Number(st.size), nlink: Number(st.nlink) });
          if (e.type === 'symlink') expect(e.targetBase64 ? Buffer.from(e.targetBase64, 'base64') : Buffer.from(e.target)).toEqual(readlinkSync(host, { encoding: 'buffer' }));
        }
        const byPath = new Map(entries.map((e) => [e.path, e]));
        expect(byPath.get('/etc/hostname').xattrs).toEqual(expect.arrayContaining(['user.origin', 'system.posix_acl_access']));
        expect(byPath.get('/tmp/fifo').type).toBe('fifo');
        const latin1 = entries.find((e) => e.pathBase64);
        expect(Buffer.from(latin1.pathBase64, 'base64')).toEqual(Buffer.from([...Buffer.from('/latin1-'), 0xe9, 0xff]));

        const cat = output(lklfs(['cat', '-i', img, '--json', '/etc/hostname', '/big']), 'cat');
        expect(cat.files.map((f: any) => [f.path, f.size])).toEqual([['/etc/hostname', 6], ['/big', 3 * 1024 * 1024 + 17]]);
        expect(Buffer.from(cat.files[1].dataBase64, 'base64')).toEqual(readFileSync(join(src, 'big')));

        const tar = output(lklfs(['fs2tar', '-i', img, '--json', join(dir, 'out.tar')]), 'fs2tar');
        // Everything listed (lost+found too) and the root "./", but the
        // socket, which cannot be archived (one warning).
        expect(tar.entries).toBe(listed.entries.length + 1 - 1);
        expect(tar.warnings).toEqual([expect.stringMatching(/socket/)]);

        const img2 = join(dir, 'fs2.img');
        sh('truncate', ['-s', '128M', img2]);
        sh('mkfs.ext4', ['-q', img2]);
        const unpacked = output(lklfs(['tar2fs', '-i', img2, '--json', join(dir, 'out.tar')]), 'tar2fs');
        // bin/tool's two other names come as links to it.
        expect([unpacked.files, unpacked.hardlinks]).toEqual([[...want.values()].filter((n) => n.kind === 'file').length - 2, 2]);
        expect(unpacked.warnings).toEqual([]);

        const out = join(dir, 'out');
        const back = output(lklfs(['cpfromfs', '-i', img, '--json', '/etc', out]), 'cpfromfs');
        // /etc itself and everything below it.
        expect(back.entries).toBe([...want.keys()].filter((k) => k === 'etc' || k.startsWith('etc/')).length);

        // Failures: the error schema, the usual status, the system error's code.
        const missing = lklfs(['ls', '-i', img, '--json', '/nope']);
        expect(missing.status).toBe(1);
        expect(output(missing, 'ls').error).toEqual({ message: expect.stringMatching(/\/nope: ENOENT/), exitCode: 1, code: 'ENOENT' });
        const usage = lklfs(['cptofs', '-i', img, '--json', src]);
        expect(usage.status).toBe(2);
        expect(output(usage, 'cptofs').error.exitCode).toBe(2);
        const toStdout = lklfs(['fs2tar', '-i', img, '--json', '-']);
        expect(toStdout.status).toBe(2);
        expect(output(toStdout, 'fs2tar').error.message).toMatch(/give the archive a file name/);
      }),
  );

  (haveTool('mkfs.ext4') ? test : test.skip)('mkfs-check: a row per type, each step, the tools', () => {
    const r = lklfs(['mkfs-check', '--json', '-t', 'ext4', '-t', 'udf']);
    const doc = output(r, 'mkfs-check');
    const ext4 = doc.results.find((x: any) => x.type === 'ext4');
    expect(ext4).toMatchObject({ outcome: 'ok', steps: { made: true, written: true, checked: true, readBack: true }, tools: { package: 'e2fsprogs', mkfs: 'mkfs.ext4', checker: 'e2fsck' } });
    const version = sh('dpkg-query', ['-W', '-f', '${Version}', 'e2fsprogs'], { allowFail: true }).stdout;
    expect(ext4.tools.version).toBe(version || undefined);
    // udf: no checker on Debian, so no such step.
    const udf = doc.results.find((x: any) => x.type === 'udf');
    expect(udf.steps.checked).toBeNull();
  });

  (haveTool('mkfs.ext4') ? test : test.skip)('grow: the sizes before and after, as dumpe2fs sees them; a refusal as an error', () =>
    inScratch('json-grow', (dir) => {
      const img = join(dir, 'fs.img');
      sh('truncate', ['-s', '32M', img]);
      sh('mkfs.ext4', ['-q', '-F', img]);
      const doc = output(lklfs(['grow', '-i', img, '--json', '--size', '+32M']), 'grow');
      expect(doc).toMatchObject({ type: 'ext4', device: { fromBytes: 32 << 20, toBytes: 64 << 20 }, imageBytes: 64 << 20 });
      const blocks = Number(/^Block count:\s+(\d+)$/m.exec(sh('dumpe2fs', ['-h', img]).stdout)?.[1]);
      expect(blocks * 1024).toBe(64 << 20);
      expect(doc.filesystem.toBytes).toBeGreaterThan(doc.filesystem.fromBytes + (28 << 20));
      const shrink = lklfs(['grow', '-i', img, '--json', '--size', '1M']);
      expect(shrink.status).toBe(2);
      expect(output(shrink, 'grow').error.message).toMatch(/does not shrink/);
    }),
  );

  const noFuse = fuseUnavailable();
  (noFuse === undefined && haveTool('mkfs.ext4') ? test : test.skip)(`mount and umount${noFuse ? ` (skipped: ${noFuse})` : ''}`, () =>
    inScratch('json-mount', (dir) => {
      const img = join(dir, 'fs.img');
      const mnt = join(dir, 'mnt');
      sh('truncate', ['-s', '64M', img]);
      sh('mkfs.ext4', ['-q', img]);
      sh('mkdir', [mnt]);
      const mounted = output(lklfs(['mount', '--json', img, mnt]), 'mount');
      expect(mounted).toEqual({ image: img, mountpoint: mnt, readOnly: false, served: 'daemon' });
      const unmounted = output(lklfs(['umount', '--json', mnt]), 'umount');
      expect(unmounted).toEqual({ mountpoint: mnt, image: img });
      expect(sh('e2fsck', ['-fn', img], { allowFail: true }).status).toBe(0);
    }));
});
