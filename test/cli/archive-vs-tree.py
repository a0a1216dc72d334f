"""Compares a tar archive, as Python's tarfile reads it, with the tree it
should hold, as the host's filesystem shows it: the same entries in the
same order (depth first, names in byte order), each with its type, mode,
owner, times to the nanosecond, link target (a hard link's: the first name
of its inode), device numbers, size, data, extended attributes and ACLs
(as getfacl -n prints them), files with holes stored sparse with exactly
their data extents. Neither side is read by lklfs. Sockets, which tar
cannot hold, are not expected.

    python3 archive-vs-tree.py ARCHIVE TREE

Prints one line per difference and exits 1 if there is any.
"""
import hashlib
import os
import stat
import subprocess
import sys
import tarfile
from decimal import Decimal

archive, tree = sys.argv[1], os.fsencode(sys.argv[2])
SEEK_DATA, SEEK_HOLE = 3, 4


def raw(text):
    """tarfile's str (surrogateescape) back to the bytes in the archive."""
    return text.encode("utf-8", "surrogateescape")


def pax_ns(text):
    return int(Decimal(text) * 10**9)


def extents(path):
    """Where a file has data: [(offset, length)], by SEEK_DATA/SEEK_HOLE."""
    out = []
    with open(path, "rb") as f:
        fd, size, off = f.fileno(), os.fstat(f.fileno()).st_size, 0
        while off < size:
            try:
                start = os.lseek(fd, off, SEEK_DATA)
            except OSError:
                break
            end = os.lseek(fd, start, SEEK_HOLE)
            out.append((start, end - start))
            off = end
    return out


def sha256(f):
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def acl_text(path, which):
    flag = "-a" if which == "access" else "-d"
    out = subprocess.run(["getfacl", "-n", "-E", "-p", "--omit-header", flag, path], check=True, capture_output=True).stdout
    return out.decode().strip("\n") + "\n"


def expected():
    entries, first = [], {}

    def visit(rel):
        path = tree + b"/" + rel if rel else tree
        st = os.lstat(path)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFSOCK:
            return
        e = {"name": rel, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
        key = (st.st_dev, st.st_ino)
        if kind != stat.S_IFDIR and st.st_nlink > 1 and key in first:
            e.update(type="link", link=first[key])
            entries.append(e)
            return
        first.setdefault(key, rel)
        e.update(mtime=st.st_mtime_ns, atime=st.st_atime_ns, size=0, link=b"", xattrs={}, acls={})
        for name in os.listxattr(path, follow_symlinks=False):
            e["xattrs"][os.fsencode(name)] = os.getxattr(path, name, follow_symlinks=False)
            if name.startswith("system.posix_acl_"):
                which = name[len("system.posix_acl_"):]
                e["acls"][which] = acl_text(path, which)
        if kind == stat.S_IFREG:
            e.update(type="file", size=st.st_size)
            with open(path, "rb") as f:
                e["sha256"] = sha256(f)
            data = extents(path)
            # Files with holes (big enough to be worth it) are stored sparse.
            if st.st_size >= 1 << 20 and sum(n for _, n in data) < st.st_size:
                e["sparse"] = data
        elif kind == stat.S_IFLNK:
            e.update(type="symlink", link=os.readlink(path))
        elif kind in (stat.S_IFCHR, stat.S_IFBLK):
            e.update(type="char" if kind == stat.S_IFCHR else "block", dev=(os.major(st.st_rdev), os.minor(st.st_rdev)))
        elif kind == stat.S_IFIFO:
            e.update(type="fifo")
        else:
            e.update(type="dir")
        entries.append(e)
        if kind == stat.S_IFDIR:
            for name in sorted(os.listdir(path)):
                visit(rel + b"/" + name if rel else name)

    visit(b"")
    return entries


TYPES = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.LNKTYPE: "link", tarfile.SYMTYPE: "symlink",
         tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block", tarfile.DIRTYPE: "dir", tarfile.FIFOTYPE: "fifo"}


def archived():
    entries = []
    with tarfile.open(archive) as tf:
        for m in tf:
            name = raw(m.name)
            e = {"name": b"" if name == b"." else name, "type": TYPES[m.type], "mode": m.mode, "uid": m.uid, "gid": m.gid}
            if e["type"] == "link":
                e["link"] = raw(m.linkname)
                entries.append(e)
                continue
            pax = m.pax_headers
            e.update(mtime=pax_ns(pax["mtime"]), atime=pax_ns(pax["atime"]), size=m.size if e["type"] == "file" else 0,
                     link=raw(m.linkname), xattrs={}, acls={})
            for key, value in pax.items():
                if key.startswith("SCHILY.xattr."):
                    xname = raw(key[len("SCHILY.xattr."):]).replace(b"%3D", b"=").replace(b"%25", b"%")
                    e["xattrs"][xname] = raw(value)
                elif key.startswith("SCHILY.acl."):
                    e["acls"][key[len("SCHILY.acl."):]] = value
            if e["type"] == "file":
                e["sha256"] = sha256(tf.extractfile(m))
                if m.sparse is not None:
                    # The map ends with (size, 0) when the file ends in a hole.
                    e["sparse"] = [(off, n) for off, n in m.sparse if n > 0]
            if e["type"] in ("char", "block"):
                e["dev"] = (m.devmajor, m.devminor)
            entries.append(e)
    return entries


want, got = expected(), archived()
problems = []
if [e["name"] for e in want] != [e["name"] for e in got]:
    problems.append(f"names: want {[e['name'] for e in want]}\n       got  {[e['name'] for e in got]}")
for w, g in zip(want, got):
    for field in sorted(set(w) | set(g)):
        if w.get(field) != g.get(field):
            problems.append(f"{w['name']!r} {field}: want {w.get(field)!r}, got {g.get(field)!r}")
print("\n".join(problems))
sys.exit(1 if problems else 0)
