// SPDX-License-Identifier: GPL-2.0
#include "fuse_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include <lkl/linux/prctl.h>
#include <lkl/linux/resource.h>
#include <lkl/linux/sched.h>
#include <lkl/linux/securebits.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace lklfs {

// The host's open flags, mode bits and errno values are the kernel's own
// (x86-64 and arm64 use the generic ones): they pass through as they are.
static_assert(O_ACCMODE == LKL_O_ACCMODE && O_APPEND == LKL_O_APPEND && O_DIRECT == LKL_O_DIRECT &&
                  O_NOFOLLOW == LKL_O_NOFOLLOW && O_TRUNC == LKL_O_TRUNC && O_CREAT == LKL_O_CREAT,
              "host and kernel open flags differ");
static_assert(S_IFMT == LKL_S_IFMT && ENOENT == LKL_ENOENT, "host and kernel constants differ");

namespace {

FuseState *state;
const FuseLib *lib;

// Nothing but this mount changes the image (it is locked), so what the
// host caches stays true until it changes it through us.
constexpr double kCacheSeconds = 86400;

constexpr int kEmptyPath = LKL_AT_EMPTY_PATH | LKL_AT_SYMLINK_NOFOLLOW;

Inode *In(fuse_ino_t id) { return state->inodes.Get(id); }

// The inode of id's descriptor for this request (see InodeFd).
struct Fd : InodeFd {
  explicit Fd(fuse_ino_t id, Access access = Access::kAny) : InodeFd(&state->inodes, In(id), access) {}
};

void ReplyErr(fuse_req_t req, long ret) { lib->fuse_reply_err(req, ret < 0 ? -ret : ret); }

void ReplyStatus(fuse_req_t req, long ret) { ReplyErr(req, ret < 0 ? ret : 0); }

struct stat HostStat(const struct lkl_stat &k) {
  struct stat st = {};
  st.st_dev = k.st_dev;
  st.st_ino = k.st_ino;
  st.st_mode = k.st_mode;
  st.st_nlink = k.st_nlink;
  st.st_uid = k.st_uid;
  st.st_gid = k.st_gid;
  st.st_rdev = makedev(DevMajor(k.st_rdev), DevMinor(k.st_rdev));
  st.st_size = k.st_size;
  st.st_blksize = k.st_blksize;
  st.st_blocks = k.st_blocks;
  st.st_atim = {static_cast<time_t>(k.lkl_st_atime), static_cast<long>(k.st_atime_nsec)};
  st.st_mtim = {static_cast<time_t>(k.lkl_st_mtime), static_cast<long>(k.st_mtime_nsec)};
  st.st_ctim = {static_cast<time_t>(k.lkl_st_ctime), static_cast<long>(k.st_ctime_nsec)};
  return st;
}

long Stat(long fd, struct lkl_stat *st) { return lkl_sys_newfstatat(fd, "", st, kEmptyPath); }

// An O_PATH descriptor named for the calls that take paths (xattrs): the
// kernel's magic link to it, which they follow to the inode itself (a
// symlink's own included: the link it is is not followed further).
std::string MagicLink(long fd) { return "/proc/self/fd/" + std::to_string(fd); }

// The host's entry for inode (one more reference to it, see Inodes).
struct fuse_entry_param EntryOf(Inode *inode, const struct lkl_stat &st) {
  struct fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  e.ino = state->inodes.Id(inode);
  e.attr = HostStat(st);
  e.attr_timeout = e.entry_timeout = kCacheSeconds;
  return e;
}

// The host's entry for name in directory dirfd, into *e.
long Lookup(long dirfd, const char *name, struct fuse_entry_param *e) {
  Inode *inode;
  struct lkl_stat st;
  long ret = state->inodes.Lookup(dirfd, name, &inode, &st);
  if (ret == 0) *e = EntryOf(inode, st);
  return ret;
}

// A new inode (not a link) has no capabilities yet: the host's first
// question before a write is answered (see OpGetxattr).
void ReplyEntry(fuse_req_t req, Inode *inode, const struct lkl_stat &st, bool new_inode) {
  uint32_t none = 0;
  if (new_inode) inode->caps.compare_exchange_strong(none, 1);
  struct fuse_entry_param e = EntryOf(inode, st);
  lib->fuse_reply_entry(req, &e);
}

// After a call that made name in dirfd (ret: its result), the new entry.
void ReplyMade(fuse_req_t req, long dirfd, const char *name, long ret, bool new_inode = true) {
  Inode *inode;
  struct lkl_stat st;
  if (ret >= 0) ret = state->inodes.Lookup(dirfd, name, &inode, &st);
  if (ret < 0)
    ReplyErr(req, ret);
  else
    ReplyEntry(req, inode, st, new_inode);
}

// What this thread creates belongs to the caller, as on a local
// filesystem: the thread takes the caller's fsuid, fsgid and umask, and
// the kernel applies set-group-ID directories and default ACLs itself.
// (The thread keeps root's capabilities: the host kernel has checked the
// caller's permissions already, see default_permissions.)
void ActAs(fuse_req_t req) {
  const struct fuse_ctx *ctx = lib->fuse_req_ctx(req);
  thread_local uid_t uid = 0;
  thread_local gid_t gid = 0;
  thread_local mode_t umask = 0;
  if (ctx->uid != uid) lkl_sys_setfsuid(uid = ctx->uid);
  if (ctx->gid != gid) lkl_sys_setfsgid(gid = ctx->gid);
  if (ctx->umask != umask) lkl_sys_umask(umask = ctx->umask);
}

// Extended attributes go by descriptor where it takes such calls, else
// (an O_PATH descriptor: symlinks, devices) by its magic link.
long SetXattr(const Fd &inode, const char *name, const char *value, size_t size, int flags) {
  long fd = inode.get();
  if (fd < 0) return fd;
  return inode.real() ? lkl_sys_fsetxattr(fd, name, value, size, flags)
                      : lkl_sys_setxattr(MagicLink(fd).c_str(), name, value, size, flags);
}

long GetXattr(const Fd &inode, const char *name, char *value, size_t size) {
  long fd = inode.get();
  if (fd < 0) return fd;
  return inode.real() ? lkl_sys_fgetxattr(fd, name, value, size)
                      : lkl_sys_getxattr(MagicLink(fd).c_str(), name, value, size);
}

long ListXattr(const Fd &inode, char *names, size_t size) {
  long fd = inode.get();
  if (fd < 0) return fd;
  return inode.real() ? lkl_sys_flistxattr(fd, names, size) : lkl_sys_listxattr(MagicLink(fd).c_str(), names, size);
}

long RemoveXattr(const Fd &inode, const char *name) {
  long fd = inode.get();
  if (fd < 0) return fd;
  return inode.real() ? lkl_sys_fremovexattr(fd, name) : lkl_sys_removexattr(MagicLink(fd).c_str(), name);
}

// The host asks for this one before every write (may the write keep the
// file's capabilities?): an absence once seen is remembered (Inode::caps)
// until the attribute is set or removed through us, the only way it can
// change while the image is mounted.
constexpr char kCaps[] = "security.capability";

void CapsChanged(Inode *inode) {
  uint32_t caps = inode->caps;
  while (!inode->caps.compare_exchange_weak(caps, (caps + 2) & ~1u)) {
  }
}

// Whether the filesystem has no extended attributes at all: the root has
// neither of two that any other filesystem would take. (Either is
// EOPNOTSUPP only for want of a handler for its namespace.)
bool NoXattrs() {
  Fd root(FUSE_ROOT_ID, Access::kRead);
  return root.get() >= 0 && GetXattr(root, kCaps, nullptr, 0) == -LKL_EOPNOTSUPP &&
         GetXattr(root, "user.lklfs", nullptr, 0) == -LKL_EOPNOTSUPP;
}

void OpInit(void *, struct fuse_conn_info *conn) {
  // Directory operations in parallel, listings with attributes, ACLs
  // enforced by the host, and the umask ours to apply (a default ACL
  // overrides it). Files opened and closed without a request each
  // (no-open).
  conn->want |= conn->capable & (FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_READDIRPLUS | FUSE_CAP_POSIX_ACL |
                                 FUSE_CAP_DONT_MASK | FUSE_CAP_ASYNC_READ | FUSE_CAP_CACHE_SYMLINKS |
                                 FUSE_CAP_NO_OPEN_SUPPORT);
  // No writeback cache: with it the host keeps the times a write changes
  // as its own and sends each change back as a request, so a small file
  // copied in (cp -a: made, written, its times, owner and ACL set) took
  // two setattr requests more than written through. The
  // host clears set-user-ID bits on writes and chown itself (our kernel
  // would not: its calls come from root); with nobody else writing the
  // image, a changed mtime never means stale cached data. O_TRUNC comes
  // as a truncation of its own (without open requests, it must).
  // Listings always with attributes: the "auto" choice switches to plain
  // ones from a directory's second batch on when its entries are cached
  // from the first (tar, cp -a, find do not look them up again), and then
  // every later entry costs a lookup request of its own.
  conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_AUTO_INVAL_DATA |
                  FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_READDIRPLUS_AUTO);
  conn->max_write = kMaxTransfer;
  conn->max_readahead = kMaxTransfer;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->time_gran = 1;
  state->no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
  state->no_xattrs = NoXattrs();
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  struct fuse_entry_param e;
  Fd dir(parent);
  long ret = dir.get() < 0 ? dir.get() : Lookup(dir.get(), name, &e);
  if (ret == -LKL_ENOENT) {
    // Absent names are cached too: they can only appear through us.
    memset(&e, 0, sizeof(e));
    e.entry_timeout = kCacheSeconds;
    ret = 0;
  }
  if (ret < 0)
    ReplyErr(req, ret);
  else
    lib->fuse_reply_entry(req, &e);
}

void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  state->inodes.Forget(ino, nlookup);
  lib->fuse_reply_none(req);
}

void OpForgetMulti(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  for (size_t i = 0; i < count; i++) state->inodes.Forget(forgets[i].ino, forgets[i].nlookup);
  lib->fuse_reply_none(req);
}

void ReplyAttr(fuse_req_t req, long fd) {
  struct lkl_stat st;
  long ret = fd < 0 ? fd : Stat(fd, &st);
  if (ret < 0) {
    ReplyErr(req, ret);
    return;
  }
  struct stat host = HostStat(st);
  lib->fuse_reply_attr(req, &host, kCacheSeconds);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *) { ReplyAttr(req, Fd(ino).get()); }

// (UTIME_NOW and UTIME_OMIT are not in the uapi headers; the values are
// the same everywhere.)
struct __lkl__kernel_timespec SetTime(int to_set, int now, int given, const struct timespec &t) {
  if (to_set & now) return {0, UTIME_NOW};
  if (to_set & given) return {t.tv_sec, t.tv_nsec};
  return {0, UTIME_OMIT};
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *) {
  Fd inode(ino, (to_set & FUSE_SET_ATTR_SIZE) ? Access::kWrite : Access::kAny);
  long fd = inode.get(), ret = fd < 0 ? fd : 0;
  if (!ret && (to_set & FUSE_SET_ATTR_MODE)) ret = lkl_sys_fchmodat2(fd, "", attr->st_mode, LKL_AT_EMPTY_PATH);
  if (!ret && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
    unsigned uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : -1;
    unsigned gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : -1;
    ret = lkl_sys_fchownat(fd, "", uid, gid, kEmptyPath);
  }
  if (!ret && (to_set & FUSE_SET_ATTR_SIZE)) ret = lkl_sys_ftruncate(fd, attr->st_size);
  if (!ret && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
                         FUSE_SET_ATTR_MTIME_NOW))) {
    struct __lkl__kernel_timespec ts[2] = {
        SetTime(to_set, FUSE_SET_ATTR_ATIME_NOW, FUSE_SET_ATTR_ATIME, attr->st_atim),
        SetTime(to_set, FUSE_SET_ATTR_MTIME_NOW, FUSE_SET_ATTR_MTIME, attr->st_mtim)};
    ret = lkl_sys_utimensat(fd, "", ts, kEmptyPath);
  }
  if (ret < 0)
    ReplyErr(req, ret);
  else
    ReplyAttr(req, fd);
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  char target[4097];
  Fd link(ino);
  long n = link.get() < 0 ? link.get() : lkl_sys_readlinkat(link.get(), "", target, sizeof(target) - 1);
  if (n < 0) {
    ReplyErr(req, n);
    return;
  }
  target[n] = '\0';
  lib->fuse_reply_readlink(req, target);
}

// Regular files come here too (see OpOpen): made by opening them, so that
// the write that comes next finds the descriptor open.
void OpMknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  ActAs(req);
  Fd dir(parent);
  long fd = dir.get();
  if (fd < 0 || !S_ISREG(mode)) {
    ReplyMade(req, fd, name, fd < 0 ? fd : lkl_sys_mknodat(fd, name, mode, EncodeDev(major(rdev), minor(rdev))));
    return;
  }
  fd = lkl_sys_openat(fd, name, LKL_O_CREAT | LKL_O_EXCL | LKL_O_RDWR | LKL_O_CLOEXEC, mode & ~S_IFMT);
  Inode *inode;
  struct lkl_stat st;
  if (fd >= 0) fd = state->inodes.Made(fd, &inode, &st);
  if (fd < 0) {
    ReplyErr(req, fd);
    return;
  }
  ReplyEntry(req, inode, st, true);
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  ActAs(req);
  Fd dir(parent);
  long fd = dir.get();
  ReplyMade(req, fd, name, fd < 0 ? fd : lkl_sys_mkdirat(fd, name, mode));
}

void OpSymlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name) {
  ActAs(req);
  Fd dir(parent);
  long fd = dir.get();
  ReplyMade(req, fd, name, fd < 0 ? fd : lkl_sys_symlinkat(target, fd, name));
}

void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name) {
  Fd dir(parent), inode(ino);
  long ret = dir.get() < 0 ? dir.get() : inode.get();
  if (ret >= 0) ret = lkl_sys_linkat(inode.get(), "", dir.get(), name, LKL_AT_EMPTY_PATH);
  ReplyMade(req, dir.get(), name, ret, false);
}

// Removes name from parent; an inode the host still knows (open, perhaps)
// lives on until it forgets it.
void Remove(fuse_req_t req, fuse_ino_t parent, const char *name, int flags) {
  Fd dir(parent);
  long fd = dir.get();
  if (fd >= 0) state->inodes.PinIfKnown(fd, name);
  ReplyStatus(req, fd < 0 ? fd : lkl_sys_unlinkat(fd, name, flags));
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char *name) { Remove(req, parent, name, 0); }

void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char *name) { Remove(req, parent, name, LKL_AT_REMOVEDIR); }

void OpRename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
              unsigned int flags) {
  Fd from(parent), to(newparent);
  long ret = from.get() < 0 ? from.get() : to.get();
  // What the rename replaces lives on as an unlinked file does.
  if (ret >= 0 && !(flags & LKL_RENAME_EXCHANGE)) state->inodes.PinIfKnown(to.get(), newname);
  if (ret >= 0) ret = lkl_sys_renameat2(from.get(), name, to.get(), newname, flags);
  ReplyStatus(req, ret);
}

// Files are not opened one by one: ENOSYS tells the host to open them
// without asking from now on, and to send no flush or release. A request
// that needs the data takes the inode's descriptor (see fuse_inodes.h).
// New files come the same way: without a create operation the host makes
// them with mknod and opens them itself.
void OpOpen(fuse_req_t req, fuse_ino_t, struct fuse_file_info *) { lib->fuse_reply_err(req, ENOSYS); }

// Buffers for reads, one per serving thread: up to max_read (1 MiB).
std::vector<char> &ReadBuffer(size_t size) {
  thread_local std::vector<char> buf;
  if (buf.size() < size) buf.resize(size);
  return buf;
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *) {
  Fd file(ino, Access::kRead);
  long fd = file.get();
  if (fd < 0) {
    ReplyErr(req, fd);
    return;
  }
  std::vector<char> &buf = ReadBuffer(size);
  size_t got = 0;
  while (got < size) {
    long n = lkl_sys_pread64(fd, buf.data() + got, size - got, off + got);
    if (n < 0) {
      ReplyErr(req, n);
      return;
    }
    if (n == 0) break;
    got += n;
  }
  // The host keeps the data in its own page cache.
  DropCache(fd, off, got);
  lib->fuse_reply_buf(req, buf.data(), got);
}

void OpWrite(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off, struct fuse_file_info *) {
  Fd file(ino, Access::kWrite);
  long fd = file.get();
  if (fd < 0) {
    ReplyErr(req, fd);
    return;
  }
  size_t done = 0;
  while (done < size) {
    long n = lkl_sys_pwrite64(fd, data + done, size - done, off + done);
    if (n < 0) {
      ReplyErr(req, n);
      return;
    }
    done += n;
  }
  lib->fuse_reply_write(req, done);
}

void OpFsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *) {
  Fd file(ino, Access::kRead);
  long fd = file.get();
  ReplyStatus(req, fd < 0 ? fd : datasync ? lkl_sys_fdatasync(fd) : lkl_sys_fsync(fd));
}

void OpFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *) {
  Fd file(ino, Access::kWrite);
  long fd = file.get();
  ReplyStatus(req, fd < 0 ? fd : lkl_sys_fallocate(fd, mode, off, len));
}

void OpLseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *) {
  Fd file(ino, Access::kRead);
  long ret = file.get();
  if (ret >= 0) ret = lkl_sys_lseek(ret, off, whence);
  if (ret < 0)
    ReplyErr(req, ret);
  else
    lib->fuse_reply_lseek(req, ret);
}

void OpCopyFileRange(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *, fuse_ino_t ino_out,
                     off_t off_out, struct fuse_file_info *, size_t len, int flags) {
  lkl_loff_t in = off_in, out = off_out;
  Fd from(ino_in, Access::kRead), to(ino_out, Access::kWrite);
  long ret = from.get() < 0 ? from.get() : to.get();
  if (ret >= 0) ret = lkl_sys_copy_file_range(from.get(), &in, to.get(), &out, len, flags);
  if (ret < 0)
    ReplyErr(req, ret);
  else
    lib->fuse_reply_write(req, ret);
}

// Directories are not opened one by one either (see fuse_listings.h):
// ENOSYS, where the host takes it, tells it to open them without asking
// from now on, and to send no release. (Older hosts are answered with no
// handle, which their release gives back.)
void OpOpendir(fuse_req_t req, fuse_ino_t, struct fuse_file_info *fi) {
  if (state->no_opendir) {
    lib->fuse_reply_err(req, ENOSYS);
    return;
  }
  fi->fh = 0;
  // Listings stay valid until the directory changes through the host.
  fi->cache_readdir = 1;
  fi->keep_cache = 1;
  lib->fuse_reply_open(req, fi);
}

// Fills out (size bytes) with entries from off (the cookie of the first),
// as the kernel's getdents64 gives them, with attributes and a reference
// each for readdirplus (not for . and ..). The bytes used (0: the listing
// is at its end), or a negative errno if there are none.
long FillDir(fuse_req_t req, Listing *dir, char *out, size_t size, off_t off, bool plus) {
  std::lock_guard<std::mutex> hold(dir->lock);
  if (off != dir->pos) {
    long ret = lkl_sys_lseek(dir->fd, off, LKL_SEEK_SET);
    if (ret < 0) return ret;
    dir->at = dir->end = 0;
    dir->pos = off;
  }
  size_t used = 0;
  for (;;) {
    if (dir->at == dir->end) {
      long n = lkl_sys_getdents64(dir->fd, reinterpret_cast<struct lkl_linux_dirent64 *>(dir->buf.data()),
                                  dir->buf.size());
      if (n <= 0) return n < 0 && used == 0 ? n : used;
      dir->at = 0;
      dir->end = n;
    }
    auto *de = reinterpret_cast<struct lkl_linux_dirent64 *>(dir->buf.data() + dir->at);
    const char *name = de->d_name;
    size_t room = size - used, len;
    if (plus) {
      if (lib->fuse_add_direntry_plus(req, nullptr, 0, name, nullptr, 0) > room) break;
      struct fuse_entry_param e = {};
      if (!strcmp(name, ".") || !strcmp(name, "..")) {
        e.attr.st_ino = de->d_ino;
      } else if (long ret = Lookup(dir->fd, name, &e); ret < 0 && ret != -LKL_ENOENT) {
        return used ? used : ret;
      }
      // An entry removed since the listing is passed on without attributes.
      if (!e.attr.st_mode) e.attr.st_mode = de->d_type << 12;
      len = lib->fuse_add_direntry_plus(req, out + used, room, name, &e, de->d_off);
    } else {
      struct stat st = {};
      st.st_ino = de->d_ino;
      st.st_mode = de->d_type << 12;
      len = lib->fuse_add_direntry(req, out + used, room, name, &st, de->d_off);
      if (len > room) break;
    }
    used += len;
    dir->at += de->d_reclen;
    dir->pos = de->d_off;
  }
  return used;
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  std::shared_ptr<Listing> listing;
  long n = state->listings.Get(&state->inodes, In(ino), &listing);
  std::vector<char> &out = ReadBuffer(size);
  if (n == 0) n = FillDir(req, listing.get(), out.data(), size, off, plus);
  if (n == 0) state->listings.Ended(In(ino));
  if (n < 0)
    ReplyErr(req, n);
  else
    lib->fuse_reply_buf(req, out.data(), n);
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *) {
  ReadDir(req, ino, size, off, false);
}

void OpReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *) {
  ReadDir(req, ino, size, off, true);
}

void OpFsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *) {
  Fd dir(ino, Access::kRead);
  long fd = dir.get();
  ReplyStatus(req, fd < 0 ? fd : datasync ? lkl_sys_fdatasync(fd) : lkl_sys_fsync(fd));
}

void OpStatfs(fuse_req_t req, fuse_ino_t ino) {
  struct lkl_statfs k;
  Fd inode(ino);
  long ret = inode.get() < 0 ? inode.get() : lkl_sys_fstatfs(inode.get(), &k);
  if (ret < 0) {
    ReplyErr(req, ret);
    return;
  }
  struct statvfs st = {};
  st.f_bsize = k.f_bsize;
  st.f_frsize = k.f_frsize ? k.f_frsize : k.f_bsize;
  st.f_blocks = k.f_blocks;
  st.f_bfree = k.f_bfree;
  st.f_bavail = k.f_bavail;
  st.f_files = k.f_files;
  st.f_ffree = st.f_favail = k.f_ffree;
  st.f_namemax = k.f_namelen;
  lib->fuse_reply_statfs(req, &st);
}

void OpSetxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  long ret = SetXattr(Fd(ino, Access::kRead), name, value, size, flags);
  if (!strcmp(name, kCaps)) CapsChanged(In(ino));
  ReplyStatus(req, ret);
}

// getxattr: the size alone when asked with size 0.
void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  // ENOSYS: the host asks no more, and answers EOPNOTSUPP itself.
  if (state->no_xattrs) {
    lib->fuse_reply_err(req, ENOSYS);
    return;
  }
  bool caps = !strcmp(name, kCaps);
  uint32_t seen = In(ino)->caps;
  if (caps && (seen & 1)) {
    lib->fuse_reply_err(req, ENODATA);
    return;
  }
  std::vector<char> &buf = ReadBuffer(size);
  long n = GetXattr(Fd(ino, Access::kRead), name, size ? buf.data() : nullptr, size);
  // (Unless it was set or removed meanwhile.)
  if (caps && n == -LKL_ENODATA) In(ino)->caps.compare_exchange_strong(seen, seen | 1);
  if (n < 0)
    ReplyErr(req, n);
  else if (size == 0)
    lib->fuse_reply_xattr(req, n);
  else
    lib->fuse_reply_buf(req, buf.data(), n);
}

// The names of the inode's attributes that the caller may see: trusted.*
// are root's (the host checks reads and writes of them; listing is ours).
long ListXattrs(const Fd &inode, bool root, std::string *names) {
  long n;
  names->resize(4096);
  while ((n = ListXattr(inode, names->data(), names->size())) == -LKL_ERANGE) names->resize(names->size() * 4);
  if (n < 0) return n;
  names->resize(n);
  if (root) return n;
  std::string seen;
  for (size_t at = 0; at < names->size();) {
    size_t len = strlen(names->data() + at) + 1;
    if (names->compare(at, 8, "trusted.") != 0) seen.append(*names, at, len);
    at += len;
  }
  names->swap(seen);
  return names->size();
}

void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  std::string names;
  long n = ListXattrs(Fd(ino, Access::kRead), lib->fuse_req_ctx(req)->uid == 0, &names);
  if (n < 0)
    ReplyErr(req, n);
  else if (size == 0)
    lib->fuse_reply_xattr(req, n);
  else if (static_cast<size_t>(n) > size)
    lib->fuse_reply_err(req, ERANGE);
  else
    lib->fuse_reply_buf(req, names.data(), n);
}

void OpRemovexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  long ret = RemoveXattr(Fd(ino, Access::kRead), name);
  if (!strcmp(name, kCaps)) CapsChanged(In(ino));
  ReplyStatus(req, ret);
}

struct fuse_lowlevel_ops MakeOperations() {
  struct fuse_lowlevel_ops ops = {};
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.forget_multi = OpForgetMulti;
  ops.getattr = OpGetattr;
  ops.setattr = OpSetattr;
  ops.readlink = OpReadlink;
  ops.mknod = OpMknod;
  ops.mkdir = OpMkdir;
  ops.symlink = OpSymlink;
  ops.link = OpLink;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.rename = OpRename;
  // No create, flush or release (of files or directories): the host does
  // without them (see OpOpen and OpOpendir).
  ops.open = OpOpen;
  ops.read = OpRead;
  ops.write = OpWrite;
  ops.fsync = OpFsync;
  ops.fallocate = OpFallocate;
  ops.lseek = OpLseek;
  ops.copy_file_range = OpCopyFileRange;
  ops.opendir = OpOpendir;
  ops.readdir = OpReaddir;
  ops.readdirplus = OpReaddirplus;
  ops.fsyncdir = OpFsyncdir;
  ops.statfs = OpStatfs;
  ops.setxattr = OpSetxattr;
  ops.getxattr = OpGetxattr;
  ops.listxattr = OpListxattr;
  ops.removexattr = OpRemovexattr;
  return ops;
}

}  // namespace

const struct fuse_lowlevel_ops &FuseOperations(FuseState *s) {
  static const struct fuse_lowlevel_ops ops = MakeOperations();
  state = s;
  lib = s->lib;
  return ops;
}

long PrepareFuseThread() {
  // A umask of its own (the fs_struct is shared by all our threads
  // otherwise), and fsuid changes that leave its capabilities as root's.
  long ret = lkl_sys_unshare(LKL_CLONE_FS);
  if (ret == 0) ret = lkl_sys_prctl(LKL_PR_SET_SECUREBITS, LKL_SECBIT_NO_SETUID_FIXUP, 0, 0, 0);
  return ret;
}

void CloseFuseHandles(FuseState *s) {
  s->listings.Clear();
  s->inodes.Clear();
}

}  // namespace lklfs
