"""The system calls ordinary tools rarely make, on a mounted image (argv[1]).

Prints what each gave as JSON; mount.test.ts says what it must be.
"""
import ctypes
import errno
import json
import os
import sys

root = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
MiB = 1 << 20
out = {}


def path(name):
    return os.path.join(root, name)


def outcome(call):
    """'ok', or the errno's name."""
    try:
        call()
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]


def check(ret):
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


# Holes: data at 0 and at 5 MiB of an 8 MiB file.
fd = os.open(path('sparse'), os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, b'a' * 4096, 0)
os.pwrite(fd, b'b' * 4096, 5 * MiB)
os.ftruncate(fd, 8 * MiB)
os.fsync(fd)
out['seek'] = [
    os.lseek(fd, 0, os.SEEK_DATA),
    os.lseek(fd, 0, os.SEEK_HOLE),
    os.lseek(fd, 4096, os.SEEK_DATA),
    os.lseek(fd, 5 * MiB, os.SEEK_HOLE),
    outcome(lambda: os.lseek(fd, 5 * MiB + 4096, os.SEEK_DATA)),
]
check(libc.fallocate(fd, 0, 1 * MiB, 1 * MiB))
out['blocksAfterFallocate'] = os.fstat(fd).st_blocks
check(libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1 * MiB, 4096))
out['blocksAfterPunch'] = os.fstat(fd).st_blocks
os.close(fd)

# Rename flags.
for name, text in (('first', 'first'), ('second', 'second')):
    with open(path(name), 'w') as f:
        f.write(text)
out['noreplace'] = outcome(lambda: check(libc.renameat2(AT_FDCWD, path('first').encode(), AT_FDCWD,
                                                          path('second').encode(), RENAME_NOREPLACE)))
check(libc.renameat2(AT_FDCWD, path('first').encode(), AT_FDCWD, path('second').encode(), RENAME_EXCHANGE))
out['exchanged'] = [open(path('first')).read(), open(path('second')).read()]
out['whiteout'] = outcome(lambda: check(libc.renameat2(AT_FDCWD, path('first').encode(), AT_FDCWD,
                                                         path('moved').encode(), RENAME_WHITEOUT)))

# A symlink's own extended attributes (trusted: root's; user.* are for files and directories only).
os.symlink('sparse', path('link'))
os.setxattr(path('link'), 'trusted.lklfs', b'value', follow_symlinks=False)
out['symlinkXattr'] = os.getxattr(path('link'), 'trusted.lklfs', follow_symlinks=False).decode()
out['userXattrOnSymlink'] = outcome(lambda: os.setxattr(path('link'), 'user.x', b'1', follow_symlinks=False))

# Nanosecond times.
open(path('times'), 'w').close()
os.utime(path('times'), ns=(1234567890123456789, 1234567890123456789))
out['mtimeNs'] = str(os.stat(path('times')).st_mtime_ns)

# security.capability: absent on a new file, there once set, dropped by a
# write (the host asks before every write; the daemon remembers absences).
CAPS = 'security.capability'


def caps(name):
    try:
        return os.getxattr(path(name), CAPS).hex()
    except OSError as e:
        return errno.errorcode[e.errno]


open(path('capped'), 'w').close()
out['caps'] = [caps('capped')]
os.setxattr(path('capped'), CAPS, bytes.fromhex('0100000200200000000000000000000000000000'))
out['caps'].append(caps('capped'))
with open(path('capped'), 'a') as f:
    f.write('x')
out['caps'].append(caps('capped'))

# More files than the daemon keeps open (512), each written, then read
# back in the other order with the host's cached copy dropped first.
os.mkdir(path('many'))
for i in range(600):
    with open(path(f'many/f{i}'), 'wb') as f:
        f.write(b'%d\n' % i * 50)
unread = []
for i in reversed(range(600)):
    fd = os.open(path(f'many/f{i}'), os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    if os.read(fd, 1 << 16) != b'%d\n' % i * 50:
        unread.append(i)
    os.close(fd)
out['manyFilesWrong'] = unread

# Listings side by side, more of them than the daemon keeps open (16),
# each long enough to take several requests: every one complete.
names = [f'{i:03d}' + 'n' * 100 for i in range(200)]
for d in range(20):
    os.mkdir(path(f'list{d}'))
    for name in names:
        open(path(f'list{d}/{name}'), 'w').close()
listings = [os.scandir(path(f'list{d}')) for d in range(20)]
seen = [[] for _ in listings]
going = set(range(20))
while going:
    for d in sorted(going):
        entry = next(listings[d], None)
        if entry is None:
            going.discard(d)
        else:
            seen[d].append(entry.name)
out['listingsIncomplete'] = [d for d in range(20) if sorted(seen[d]) != names]

# (Before the next file, which is freed only once the host forgets it.)
st = os.statvfs(root)
out['statfs'] = {'frsize': st.f_frsize, 'bfree': st.f_bfree, 'files': st.f_files, 'ffree': st.f_ffree}

# A file unlinked while open lives on: written back, dropped from the
# host's cache, read again through the mount.
fd = os.open(path('doomed'), os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'still here')
os.unlink(path('doomed'))
os.pwrite(fd, b'!', 10)
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
out['unlinkedOpen'] = [os.pread(fd, 100, 0).decode(), os.fstat(fd).st_nlink]
os.close(fd)

print(json.dumps(out))
