// SPDX-License-Identifier: GPL-2.0
// fs2tar's archive, made on a kernel thread: a walk of a tree in archive
// order (depth first, each directory's entries in the order of their
// names' bytes) framed as a POSIX tar stream (tar_format.h) straight into
// a Buffer of the caller's, the files' data with it, a few MiB per trip.
// Per entry there is no trip between threads and no JS object; JS only
// writes the Buffers out (src/engine/tar-out.ts says what the archive
// holds).
//
//   openTar(path, smallFile, withContexts, disk, start) -> tar   the archive
//       of the tree at path, on disk (its image's filesystem begins start
//       bytes in; disk -1: none to read files from on the host)
//   readTar(tar, buffer) -> Promise<{ used, done, need, entries, bytes,
//       direct, sockets, socket?, changed?, changedSize?, contexts? }>: the
//       next bytes of the archive into buffer[0, used); done: it is
//       complete; need: the next entry's headers alone need a Buffer this
//       large; entries and bytes (of file data) so far, direct of those
//       bytes read from the image on the host; sockets left out so far
//       and the first one's name; changed: the name of a file that is no
//       longer the size it had (the archive stops there); contexts (with
//       withContexts): a "PATH CONTEXT" line for each entry of these bytes
//       that has an SELinux label (security.selinux, up to its NUL), PATH
//       from the archive's root ("/etc/passwd", the root "/"), as LKL's
//       fs2tar -s lists them.
//   closeTar(tar) -> Promise          closes what the walk holds open
// Calls may be queued: each readTar fills its Buffer after the one called
// before it (so the kernel goes on with the next Buffer while JS writes
// one out). After the walk fails every later call fails the same way.
//
// Names are relative to the walk's start ("" is the start). Files up to
// smallFile bytes are read whole with one read; larger ones in pieces as
// Buffers fill, their holes left out (SEEK_DATA/SEEK_HOLE) when they have
// some, in GNU tar's sparse format 1.0. A file's data is read from the
// image on the host where the filesystem allows it (extent_reader.h),
// else by the kernel, and then leaves the kernel's page cache (DropCache).
#include "kernel_api.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "args.h"
#include "cache_trim.h"
#include "copy.h"
#include "disks.h"
#include "exports.h"
#include "extent_reader.h"
#include "queue.h"
#include "tar_format.h"
#include "xattrs.h"

namespace lklfs {
namespace {

using tar::kBlock;

// Data is not started in less room than this: the next Buffer takes it.
constexpr size_t kMinPiece = 64 << 10;
// Directories held open at once (the deepest); those above are opened
// again when the walk comes back to them.
constexpr size_t kOpenDirs = 64;

size_t PadBlock(uint64_t n) { return (kBlock - n % kBlock) % kBlock; }

bool IsType(const struct lkl_stat &st, unsigned type) { return (st.st_mode & LKL_S_IFMT) == type; }

struct Extent {
  int64_t off, len;
};

// A directory being walked.
struct Dir {
  std::string path;  // the kernel's path of the directory
  std::string rel;   // its name in the archive, without the "/"
  long fd;           // -1 when closed (kOpenDirs)
  std::vector<std::string> kids;
  size_t next = 0;
};

// The next entry, all its metadata gathered, waiting for room in a Buffer.
struct Entry {
  std::string rel, path;
  struct lkl_stat st;
  std::string link;       // a symlink's target, or a hard link's first name
  bool hard_link = false;  // a later name of an inode already archived
  Xattrs xattrs;
  bool sparse = false;
  std::vector<Extent> extents;  // where a sparse file has data
  int64_t data = 0;             // bytes of file data to archive
  long fd = -1;                 // a file to read, a directory to list
  std::vector<std::string> kids;  // a directory's entries' names
};

long ListXattrs(long fd, const std::string &path, Xattrs *out) {
  if (fd >= 0)
    return CollectXattrs([&](char *buf, size_t len) { return lkl_sys_flistxattr(fd, buf, len); },
                         [&](const char *name, char *buf, size_t len) { return lkl_sys_fgetxattr(fd, name, buf, len); },
                         out);
  return CollectXattrs(
      [&](char *buf, size_t len) { return lkl_sys_llistxattr(path.c_str(), buf, len); },
      [&](const char *name, char *buf, size_t len) { return lkl_sys_lgetxattr(path.c_str(), name, buf, len); },
      out);
}

// Reads up to ask bytes at off, stopping once it has expect (ask is one
// more at the end of a file: a regular file's read stops at its size, so
// one that grew shows without another call; an empty file is read once):
// bytes read or -errno.
long ReadAt(long fd, char *buf, int64_t ask, int64_t expect, int64_t off) {
  int64_t got = 0;
  do {
    long n = lkl_sys_pread64(fd, buf + got, ask - got, off + got);
    if (n < 0) return n;
    if (n == 0) break;
    got += n;
  } while (got < expect);
  return got;
}

// A Buffer being filled.
class Out {
 public:
  Out(char *buf, size_t cap) : buf_(buf), cap_(cap) {}
  size_t used() const { return at_; }
  size_t room() const { return cap_ - at_; }
  char *here() { return buf_ + at_; }
  void Put(const void *p, size_t n) {
    memcpy(buf_ + at_, p, n);
    at_ += n;
  }
  void Zeros(size_t n) {
    memset(buf_ + at_, 0, n);
    at_ += n;
  }
  // Past n bytes already written at here().
  void Skip(size_t n) { at_ += n; }

 private:
  char *buf_;
  size_t cap_;
  size_t at_ = 0;
};

// What one fill made, and the totals after it (taken as it ends: the next
// fill may already be running when JS reads them).
struct Progress {
  size_t used = 0, need = 0;
  bool done = false;
  uint64_t entries = 0, bytes = 0, direct = 0, sockets = 0;
  std::string first_socket, contexts;
  bool changed = false;
  std::string changed_name;
  int64_t changed_size = 0;
};

class TarOut {
 public:
  // Whatever the walk holds open is closed by Close() (closeTar), on a
  // kernel thread; never by the destructor, which may run on the JS thread.
  TarOut(std::string root, int64_t small, bool contexts, std::unique_ptr<ExtentReader> direct)
      : root_(std::move(root)), small_(small), contexts_(contexts), direct_(std::move(direct)) {}

  // A place in the order of fills (on the JS thread, as readTar is called).
  uint64_t Ticket() { return tickets_++; }

  // The next bytes of the archive into buf, once the fills of the tickets
  // before this one are done; -errno (with *failure) when the walk fails.
  // The files' data read from the image on the host is read last, once
  // the next fill has its turn: the kernel walks on meanwhile.
  long Fill(uint64_t ticket, char *buf, size_t cap, Progress *progress, Failure *failure) {
    {
      std::unique_lock<std::mutex> hold(turn_lock_);
      turn_changed_.wait(hold, [&] { return turn_ == ticket; });
    }
    long ret = failed_ ? failed_ : FillNext(buf, cap, progress, failure);
    if (ret < 0 && !failed_) {
      failed_ = ret;
      failure_ = *failure;
    } else if (ret < 0) {
      *failure = failure_;
    }
    std::vector<ExtentReader::Copy> copies = std::move(copies_);
    std::vector<std::pair<size_t, std::string>> copied = std::move(copied_);
    copies_.clear();
    copied_.clear();
    {
      std::lock_guard<std::mutex> hold(turn_lock_);
      turn_++;
      turn_changed_.notify_all();
    }
    size_t at;
    long err = ret < 0 || copies.empty() ? 0 : direct_->Run(copies, &at);
    if (err < 0) {
      // The file whose copy failed: the last one that started at or before it.
      auto file = std::upper_bound(copied.begin(), copied.end(), at, [](size_t i, const auto &f) { return i < f.first; });
      *failure = Failure{"read", std::prev(file)->second};
      return err;
    }
    return ret;
  }

  void Close() {
    if (next_ && next_->fd >= 0) lkl_sys_close(next_->fd);
    next_.reset();
    if (reading_) lkl_sys_close(file_);
    reading_ = false;
    for (auto &f : stack_)
      if (f.fd >= 0) lkl_sys_close(f.fd);
    stack_.clear();
    trim_.Close();
    walked_ = ended_ = true;
  }

 private:
  long FillNext(char *buf, size_t cap, Progress *progress, Failure *failure) {
    Out out(buf, cap);
    long ret = 0;
    while (ret >= 0 && !ended_) {
      if (Cancelled()) return -LKL_ECANCELED;
      if (reading_) {
        ret = Stream(&out, failure);
        if (ret < 0 || reading_) break;  // failed, or the Buffer is full
        continue;
      }
      if (pad_) {
        if (out.room() < pad_) break;
        out.Zeros(pad_);
        pad_ = 0;
      }
      if (!next_ && !walked_) ret = Next(failure);
      if (ret < 0) break;
      if (walked_) {
        // The end of the archive: two zero blocks.
        if (out.room() < 2 * kBlock) break;
        out.Zeros(2 * kBlock);
        ended_ = true;
        break;
      }
      if (!Frame(&out, progress, failure, &ret)) break;
    }
    trim_.Check();
    progress->used = out.used();
    progress->done = ended_;
    progress->entries = entries;
    progress->bytes = bytes;
    progress->direct = direct_bytes;
    progress->sockets = sockets;
    if (sockets) progress->first_socket = first_socket;
    progress->contexts = std::move(context_lines);
    context_lines.clear();
    if (changed) {
      progress->changed = true;
      progress->changed_name = changed_name;
      progress->changed_size = changed_size;
    }
    return ret;
  }

  // Gathers the next entry into next_, or sets walked_.
  long Next(Failure *failure) {
    auto e = std::make_unique<Entry>();
    long dirfd = LKL_AT_FDCWD;
    std::string name;
    if (!started_) {
      started_ = true;
      if (direct_ && !ExtentReader::Suits(root_.c_str())) direct_.reset();
      e->path = name = root_;
      long ret = lkl_sys_newfstatat(LKL_AT_FDCWD, root_.c_str(), &e->st, LKL_AT_SYMLINK_NOFOLLOW);
      if (ret < 0) return Fail(failure, "lstat", root_, ret);
    } else {
      while (!stack_.empty() && stack_.back().next == stack_.back().kids.size()) {
        if (stack_.back().fd >= 0) lkl_sys_close(stack_.back().fd);
        stack_.pop_back();
      }
      if (stack_.empty()) {
        walked_ = true;
        return 0;
      }
      Dir &f = stack_.back();
      if (f.fd < 0) {
        f.fd = lkl_sys_openat(LKL_AT_FDCWD, f.path.c_str(), LKL_O_RDONLY | LKL_O_DIRECTORY | LKL_O_CLOEXEC, 0);
        if (f.fd < 0) return Fail(failure, "open", f.path, f.fd);
      }
      name = std::move(f.kids[f.next++]);
      e->rel = f.rel.empty() ? name : f.rel + "/" + name;
      e->path = f.path + "/" + name;
      dirfd = f.fd;
      // Looked up only now: the kernel's caches hold no more of a large
      // directory than the walk is at (cache_trim.h).
      long ret = lkl_sys_newfstatat(dirfd, name.c_str(), &e->st, LKL_AT_SYMLINK_NOFOLLOW);
      if (ret < 0) return Fail(failure, "lstat", e->path, ret);
    }
    long ret = Describe(e.get(), dirfd, name, failure);
    if (ret < 0) {
      if (e->fd >= 0) lkl_sys_close(e->fd);
      return ret;
    }
    next_ = std::move(e);
    return 0;
  }

  // What an entry needs besides its lstat: a hard link's first name, a
  // symlink's target, xattrs, a directory's entries, where a file has data.
  long Describe(Entry *e, long dirfd, const std::string &name, Failure *failure) {
    const struct lkl_stat &st = e->st;
    bool dir = IsType(st, LKL_S_IFDIR), file = IsType(st, LKL_S_IFREG);
    if (IsType(st, LKL_S_IFSOCK)) return 0;
    if (!dir && st.st_nlink > 1) {
      auto seen = links_.emplace(std::make_pair(st.st_dev, st.st_ino), e->rel);
      if (!seen.second) {
        e->hard_link = true;
        e->link = seen.first->second;
        // Only for its SELinux label: a link entry carries no xattrs.
        long ret = contexts_ ? ListXattrs(-1, e->path, &e->xattrs) : 0;
        return ret < 0 ? Fail(failure, "llistxattr", e->path, ret) : 0;
      }
    }
    long ret = 0;
    // An empty file has nothing to read (the image is mounted read-only:
    // it cannot grow): its attributes are listed by name.
    if ((file && st.st_size > 0) || dir) {
      long how = LKL_O_RDONLY | LKL_O_NOFOLLOW | LKL_O_CLOEXEC | (dir ? LKL_O_DIRECTORY : 0);
      e->fd = lkl_sys_openat(dirfd, name.c_str(), how, 0);
      if (e->fd < 0) return Fail(failure, "open", e->path, e->fd);
    }
    if (IsType(st, LKL_S_IFLNK)) {
      e->link.resize(4096);
      ret = lkl_sys_readlinkat(dirfd, name.c_str(), e->link.data(), e->link.size());
      if (ret < 0) return Fail(failure, "readlink", e->path, ret);
      e->link.resize(ret);
    }
    ret = ListXattrs(e->fd, e->path, &e->xattrs);
    if (ret < 0) return Fail(failure, "llistxattr", e->path, ret);
    if (dir) return List(e->fd, &e->kids, e->path, failure);
    if (!file) return 0;
    e->data = st.st_size;
    // Fewer blocks than the size needs: perhaps holes (or an inline file).
    if (st.st_size > small_ && st.st_blocks * 512 < st.st_size) {
      ret = MapData(e);
      if (ret < 0) return Fail(failure, "lseek", e->path, ret);
    }
    return 0;
  }

  // A directory's entries' names, in the order of their bytes.
  long List(long fd, std::vector<std::string> *kids, const std::string &path, Failure *failure) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      long n = lkl_sys_getdents64(fd, reinterpret_cast<struct lkl_linux_dirent64 *>(buf.data()), buf.size());
      if (n < 0) return Fail(failure, "scandir", path, n);
      if (n == 0) break;
      for (long at = 0; at < n;) {
        auto *de = reinterpret_cast<struct lkl_linux_dirent64 *>(buf.data() + at);
        at += de->d_reclen;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        kids->emplace_back(de->d_name);
      }
    }
    std::sort(kids->begin(), kids->end());
    return 0;
  }

  // Where a file has data; sparse only if that is less than its size.
  long MapData(Entry *e) {
    int64_t size = e->st.st_size, data = 0;
    std::vector<Extent> map;
    for (int64_t off = 0; off < size;) {
      long start = lkl_sys_lseek(e->fd, off, LKL_SEEK_DATA);
      if (start == -LKL_ENXIO) break;  // only a hole is left
      if (start == -LKL_EINVAL) {      // holes unknown here: all data
        map.push_back({off, size - off});
        data += size - off;
        break;
      }
      long end = start < 0 ? start : lkl_sys_lseek(e->fd, start, LKL_SEEK_HOLE);
      if (end < 0) return end;
      map.push_back({start, end - start});
      data += end - start;
      off = end;
    }
    if (data == size) return 0;
    e->sparse = true;
    e->extents = std::move(map);
    e->data = data;
    return 0;
  }

  // GNU sparse 1.0's map ("count\noffset\nlength\n...", padded to a
  // block): the extents, and the file's end when it ends in a hole (GNU
  // tar takes the size from the map's end).
  static std::string SparseMap(const Entry &e) {
    std::vector<Extent> map = e.extents;
    Extent last = map.empty() ? Extent{0, 0} : map.back();
    if (last.off + last.len < e.st.st_size) map.push_back({e.st.st_size, 0});
    std::string text = std::to_string(map.size()) + "\n";
    for (auto &x : map) text += std::to_string(x.off) + "\n" + std::to_string(x.len) + "\n";
    text.resize(text.size() + PadBlock(text.size()), '\0');
    return text;
  }

  // The ustar header of e, its extended header records (body_) and, for a
  // sparse file, its map; into name_, header_name_ and map_, which h names.
  void Headers(const Entry &e, tar::Ustar *h) {
    const struct lkl_stat &st = e.st;
    bool dir = IsType(st, LKL_S_IFDIR), file = IsType(st, LKL_S_IFREG);
    name_ = e.rel.empty() ? "./" : dir ? e.rel + "/" : e.rel;
    *h = tar::Ustar{};
    h->mode = st.st_mode;
    h->uid = st.st_uid;
    h->gid = st.st_gid;
    h->mtime = tar::UstarTime(st.lkl_st_mtime, st.st_mtime_nsec);
    body_.clear();
    map_.clear();
    if (e.hard_link) {
      h->type = '1';
      h->name = tar::Field(name_, "path", &body_, &name_field_);
      h->link = tar::Field(e.link, "linkpath", &body_, &link_field_);
      return;
    }
    header_name_ = name_;
    if (e.sparse) {
      map_ = SparseMap(e);
      size_t cut = name_.rfind('/') + 1;  // 0 when there is none
      header_name_ = name_.substr(0, cut) + "GNUSparseFile.0/" + name_.substr(cut);
    }
    uint64_t stored = map_.size() + e.data;
    h->type = file ? '0' : dir ? '5' : IsType(st, LKL_S_IFLNK) ? '2' : IsType(st, LKL_S_IFCHR) ? '3' : IsType(st, LKL_S_IFBLK) ? '4' : '6';
    h->name = tar::Field(header_name_, "path", &body_, &name_field_);
    if (file) h->size = stored;
    if (IsType(st, LKL_S_IFLNK)) h->link = tar::Field(e.link, "linkpath", &body_, &link_field_);
    if (IsType(st, LKL_S_IFCHR) || IsType(st, LKL_S_IFBLK)) {
      h->device = true;
      // The kernel's new_encode_dev() layout of st_rdev.
      h->major = (st.st_rdev >> 8) & 0xfff;
      h->minor = (st.st_rdev & 0xff) | ((st.st_rdev >> 12) & 0xfff00);
    }
    tar::AddRecord(&body_, "mtime", tar::Time(st.lkl_st_mtime, st.st_mtime_nsec));
    tar::AddRecord(&body_, "atime", tar::Time(st.lkl_st_atime, st.st_atime_nsec));
    if (st.st_uid > tar::kMaxId) tar::AddRecord(&body_, "uid", std::to_string(st.st_uid));
    if (st.st_gid > tar::kMaxId) tar::AddRecord(&body_, "gid", std::to_string(st.st_gid));
    if (file && stored > tar::kMaxSize) tar::AddRecord(&body_, "size", std::to_string(stored));
    XattrRecords(e);
    if (e.sparse) {
      tar::AddRecord(&body_, "GNU.sparse.major", "1");
      tar::AddRecord(&body_, "GNU.sparse.minor", "0");
      tar::AddRecord(&body_, "GNU.sparse.name", name_);
      tar::AddRecord(&body_, "GNU.sparse.realsize", std::to_string(st.st_size));
    }
  }

  // next_'s headers (and a small file's data) into out; false when it has
  // no room for them (with *need set if even an empty Buffer would not do).
  bool Frame(Out *out, Progress *progress, Failure *failure, long *ret) {
    Entry &e = *next_;
    const struct lkl_stat &st = e.st;
    if (IsType(st, LKL_S_IFSOCK)) {
      if (sockets++ == 0) first_socket = e.rel;
      next_.reset();
      return true;
    }
    bool dir = IsType(st, LKL_S_IFDIR), file = IsType(st, LKL_S_IFREG);
    tar::Ustar h;
    Headers(e, &h);
    if (!body_.empty()) tar::PadBody(&body_);
    // A small file comes whole with its headers: size + 1 bytes are read.
    bool whole = file && e.fd >= 0 && st.st_size <= small_;
    size_t headers = (body_.empty() ? 0 : kBlock + body_.size()) + kBlock + map_.size();
    size_t need = headers + (whole ? std::max<size_t>(e.data + PadBlock(e.data), e.data + 1) : 0);
    if (need > out->room()) {
      if (out->used() == 0) progress->need = need;
      return false;
    }
    if (!body_.empty()) {
      tar::PutHeader(out->here(), {"PaxHeader", 'x', 0644, 0, 0, body_.size(), h.mtime, {}});
      out->Skip(kBlock);
      out->Put(body_.data(), body_.size());
    }
    tar::PutHeader(out->here(), h);
    out->Skip(kBlock);
    out->Put(map_.data(), map_.size());
    entries++;
    if (contexts_) ContextLine(e);
    std::unique_ptr<Entry> done = std::move(next_);
    if (dir) {
      Push(done.get());
      return true;
    }
    if (e.fd < 0) return true;
    if (whole) {
      // One byte more than the size: a file that grew shows too.
      long got = MapDirect(e.fd, st.st_size);
      const char *call = got < 0 ? "ioctl" : "read";
      if (got >= 0) got = ReadData(e.fd, e.path, out->here(), e.data + 1, e.data, 0);
      lkl_sys_close(e.fd);
      if (got < 0) {
        *ret = Fail(failure, call, e.path, got);
        return false;
      }
      if (got != e.data) return Changed(e.rel, st.st_size);
      out->Skip(got);
      out->Zeros(PadBlock(got));
      bytes += got;
      return true;
    }
    if (e.data == 0) {
      lkl_sys_close(e.fd);
      return true;
    }
    long mapped = MapDirect(e.fd, st.st_size);
    if (mapped < 0) {
      lkl_sys_close(e.fd);
      *ret = Fail(failure, "ioctl", e.path, mapped);
      return false;
    }
    file_ = e.fd;
    file_path_ = e.path;
    file_rel_ = e.rel;
    file_size_ = st.st_size;
    pieces_ = e.sparse ? std::move(e.extents) : std::vector<Extent>{{0, st.st_size}};
    piece_ = 0;
    piece_done_ = 0;
    pad_after_ = PadBlock(e.data);
    reading_ = true;
    return true;
  }

  // The records of the xattrs an archive carries: ACLs as GNU tar --acls
  // keeps them (text), then every attribute as its raw bytes.
  void XattrRecords(const Entry &e) {
    for (auto &x : e.xattrs) {
      if (!FileOwn(x.first)) continue;
      const char *which = x.first == "system.posix_acl_access" ? "access" : x.first == "system.posix_acl_default" ? "default" : nullptr;
      if (which && tar::AclText(x.second, &acl_)) tar::AddRecord(&body_, std::string("SCHILY.acl.") + which, acl_);
    }
    for (auto &x : e.xattrs)
      if (FileOwn(x.first)) tar::AddRecord(&body_, tar::XattrKey(x.first), x.second);
  }

  // The entry's "PATH CONTEXT" line, if it has an SELinux label.
  void ContextLine(const Entry &e) {
    for (auto &x : e.xattrs) {
      if (x.first != "security.selinux") continue;
      context_lines += "/" + e.rel + " " + x.second.substr(0, x.second.find('\0')) + "\n";
      return;
    }
  }

  void Push(Entry *e) {
    stack_.push_back(Dir{e->path, e->rel, e->fd, std::move(e->kids)});
    if (stack_.size() > kOpenDirs) {
      Dir &above = stack_[stack_.size() - 1 - kOpenDirs];
      if (above.fd >= 0) lkl_sys_close(above.fd);
      above.fd = -1;
    }
  }

  // The data of the file being read, into out as far as it has room.
  long Stream(Out *out, Failure *failure) {
    while (piece_ < pieces_.size()) {
      const Extent &p = pieces_[piece_];
      int64_t left = p.len - piece_done_;
      // One byte of room spare: at the end of the file, one more is read.
      if (out->room() < 2 || (out->room() < kMinPiece && static_cast<int64_t>(out->room()) <= left)) return 0;
      int64_t off = p.off + piece_done_;
      int64_t want = std::min<int64_t>(left, out->room() - 1);
      int64_t ask = off + want == file_size_ ? want + 1 : want;
      long got = ReadData(file_, file_path_, out->here(), ask, want, off);
      if (got < 0) return Fail(failure, "read", file_path_, got);
      if (got != want) {
        Changed(file_rel_, file_size_);
        return 0;
      }
      out->Skip(got);
      bytes += got;
      piece_done_ += want;
      if (piece_done_ == p.len) {
        piece_++;
        piece_done_ = 0;
      }
    }
    lkl_sys_close(file_);
    reading_ = false;
    pad_ = pad_after_;
    return 0;
  }

  // Whether the file open as fd, of size bytes, is read from the image on
  // the host (direct_, mapped_): 0, or -errno.
  long MapDirect(long fd, int64_t size) {
    mapped_ = false;
    if (!direct_ || size == 0) return 0;
    long ret = direct_->Map(fd, size);
    mapped_ = ret == 1;
    return ret < 0 ? ret : 0;
  }

  // want bytes of the file being archived (path) at off into buf, as
  // ReadAt reads them (ask: one more at the end of the file); from the
  // image on the host when it is mapped there, once this fill has walked
  // its part (Fill): bytes read or -errno. The first file read from the
  // host is read now, and by the kernel too, as a check that the two agree
  // (the image's layout is as the filesystem says); if they did not, the
  // kernel would read everything from then on.
  long ReadData(long fd, const std::string &path, char *buf, int64_t ask, int64_t want, int64_t off) {
    if (mapped_ && checked_) {
      if (copied_.empty() || copied_.back().second != path) copied_.emplace_back(copies_.size(), path);
      direct_->Plan(buf, off, want, &copies_);
      direct_bytes += want;
      return want;
    }
    if (mapped_) {
      std::vector<ExtentReader::Copy> now;
      size_t at;
      direct_->Plan(buf, off, want, &now);
      long ret = direct_->Run(now, &at);
      if (ret < 0) return ret;
      check_.resize(ask);
      long got = ReadAt(fd, check_.data(), ask, want, off);
      DropCache(fd, off, want);
      if (got == want && !memcmp(check_.data(), buf, want)) {
        checked_ = true;
        direct_bytes += want;
        return want;
      }
      direct_.reset();
      mapped_ = false;
      if (got > 0) memcpy(buf, check_.data(), got);
      return got;
    }
    long got = ReadAt(fd, buf, ask, want, off);
    DropCache(fd, off, want);
    return got;
  }

  // The archive stops: a file is no longer the size it had.
  bool Changed(const std::string &rel, int64_t size) {
    if (reading_) lkl_sys_close(file_);
    reading_ = false;
    changed = true;
    changed_name = rel;
    changed_size = size;
    walked_ = ended_ = true;
    return false;
  }

  long Fail(Failure *failure, const char *syscall, const std::string &path, long err) {
    *failure = Failure{syscall, path};
    return err;
  }

  const std::string root_;
  const int64_t small_;
  const bool contexts_;
  // The order of fills: tickets_ handed out (JS thread), turn_ the one
  // whose fill may run; a failure, kept for the fills after it.
  uint64_t tickets_ = 0, turn_ = 0;
  std::mutex turn_lock_;
  std::condition_variable turn_changed_;
  long failed_ = 0;
  Failure failure_;
  // Reads files from the image on the host; none where that is not the
  // same data. mapped_: the file being read is read there; checked_: a
  // file read there was found the same as the kernel reads it.
  std::unique_ptr<ExtentReader> direct_;
  bool mapped_ = false, checked_ = false;
  std::vector<char> check_;
  // The host reads this fill leaves for its end, and the files they are
  // of (the index of each one's first copy, its path).
  std::vector<ExtentReader::Copy> copies_;
  std::vector<std::pair<size_t, std::string>> copied_;
  CacheTrim trim_;
  // Totals, and what Progress reports of them.
  uint64_t entries = 0, bytes = 0, direct_bytes = 0, sockets = 0;
  std::string first_socket;
  std::string context_lines;  // since the last fill
  bool changed = false;
  std::string changed_name;
  int64_t changed_size = 0;
  bool started_ = false, walked_ = false, ended_ = false;
  std::vector<Dir> stack_;
  std::unique_ptr<Entry> next_;
  // The first name archived of each inode with several, by (dev, ino).
  std::map<std::pair<uint64_t, uint64_t>, std::string> links_;
  // The entry being framed: its names, extended header body, stand-in
  // names for ustar's fields, sparse map.
  std::string name_, header_name_, body_, name_field_, link_field_, acl_, map_;
  // The file whose data is being read: its pieces, how far; then padding.
  bool reading_ = false;
  long file_ = -1;
  std::string file_path_, file_rel_;
  int64_t file_size_ = 0;
  std::vector<Extent> pieces_;
  size_t piece_ = 0;
  int64_t piece_done_ = 0;
  size_t pad_after_ = 0, pad_ = 0;
};

// Archives by handle; touched on the JS thread only (the work holds its own reference).
std::unordered_map<uint32_t, std::shared_ptr<TarOut>> archives;
uint32_t last_handle;

std::shared_ptr<TarOut> TarArg(const Napi::CallbackInfo &info) {
  auto it = archives.find(IntArg(info, 0));
  if (it == archives.end()) throw Napi::TypeError::New(info.Env(), "not an open archive");
  return it->second;
}

Napi::Value OpenTar(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  int64_t small = IntArg(info, 1);
  bool contexts = BoolArg(info, 2);
  int64_t disk = IntArg(info, 3), start = IntArg(info, 4);
  std::unique_ptr<ExtentReader> direct;
  int image = disk < 0 ? -1 : DupDiskImage(disk);
  if (image >= 0) direct = std::make_unique<ExtentReader>(image, start);
  archives.emplace(++last_handle, std::make_shared<TarOut>(path, small, contexts, std::move(direct)));
  return Napi::Number::New(info.Env(), last_handle);
}

Napi::Buffer<char> Bytes(Napi::Env env, const std::string &s) { return Napi::Buffer<char>::Copy(env, s.data(), s.size()); }

Napi::Value ReadTar(const Napi::CallbackInfo &info) {
  std::shared_ptr<TarOut> tar = TarArg(info);
  if (!info[1].IsBuffer()) throw Napi::TypeError::New(info.Env(), "argument 1 must be a Buffer");
  auto buffer = info[1].As<Napi::Buffer<char>>();
  if (buffer.Length() < 2 * kMinPiece) throw Napi::RangeError::New(info.Env(), "the Buffer must hold at least 128 KiB");
  char *data = buffer.Data();
  size_t cap = buffer.Length();
  auto progress = std::make_shared<Progress>();
  auto failure = std::make_shared<Failure>();
  uint64_t ticket = tar->Ticket();
  return Submit(
      info.Env(), "read", "", [=] { return tar->Fill(ticket, data, cap, progress.get(), failure.get()); },
      [progress](Napi::Env env, long) {
        const Progress &p = *progress;
        Napi::Object o = Napi::Object::New(env);
        o.Set("used", Napi::Number::New(env, p.used));
        o.Set("done", Napi::Boolean::New(env, p.done));
        o.Set("need", Napi::Number::New(env, p.need));
        o.Set("entries", Napi::Number::New(env, p.entries));
        o.Set("bytes", Napi::Number::New(env, p.bytes));
        o.Set("direct", Napi::Number::New(env, p.direct));
        o.Set("sockets", Napi::Number::New(env, p.sockets));
        if (p.sockets) o.Set("socket", Bytes(env, p.first_socket));
        if (!p.contexts.empty()) o.Set("contexts", Bytes(env, p.contexts));
        if (p.changed) {
          o.Set("changed", Bytes(env, p.changed_name));
          o.Set("changedSize", Napi::Number::New(env, p.changed_size));
        }
        return o;
      },
      {buffer}, failure);
}

Napi::Value CloseTar(const Napi::CallbackInfo &info) {
  std::shared_ptr<TarOut> tar = TarArg(info);
  archives.erase(IntArg(info, 0));
  return Submit(info.Env(), "close", "", [tar] {
    tar->Close();
    return 0L;
  });
}

}  // namespace

void RegisterTarOut(Napi::Env env, Napi::Object exports) {
  exports.Set("openTar", Napi::Function::New(env, OpenTar, "openTar"));
  exports.Set("readTar", Napi::Function::New(env, ReadTar, "readTar"));
  exports.Set("closeTar", Napi::Function::New(env, CloseTar, "closeTar"));
}

}  // namespace lklfs
