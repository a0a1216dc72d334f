// SPDX-License-Identifier: GPL-2.0
// A whole tree read out of the kernel in bulk, for archives (fs2tar): a
// walk in archive order -- depth first, each directory's entries in the
// order of their names' bytes -- that fills a Buffer of the caller's with
// one record per entry (metadata, symlink target, xattrs, hard links,
// where a sparse file has data) followed by the file's data, as much as
// fits: one trip to a kernel thread per Buffer, not several per file, and
// no JS object per entry.
//
//   openTree(path, smallFile) -> tree   a walk of path (nothing read yet)
//   readTree(tree, buffer) -> Promise<{ used, done, need }>
//       the next records into buffer[0, used); done: the walk is over;
//       need: the next entry's record alone needs a Buffer this large
//   closeTree(tree) -> Promise          closes what the walk holds open
//
// Records start at multiples of 8, little-endian (src/engine/tree-records.ts
// reads them):
//   entry  u32 kind = 1, u32 length (of the whole record, padded to 8),
//          u32 mode, uid, gid, rdev major, rdev minor, mtime ns, atime ns,
//          u32 flags (1: sparse, 2: a later name of an inode already given,
//          whose first name is link), u32 name length, link length, xattr
//          count, extent count; f64 size, mtime s, atime s, data (the bytes
//          of data records that follow: the file's size, the sum of its
//          extents, or 0); then the extents (f64 offset, f64 length), the
//          name (relative to the walk's start, "" for the start itself),
//          link (a symlink's target or the first name), and each xattr
//          (u32 name length, u32 value length, name, value).
//   data   u32 kind = 2, u32 length, u32 bytes, u32 0, the bytes.
//   changed  u32 kind = 3, u32 length: the file whose data was being read
//          is not the size it had (the walk ends there).
// Files up to smallFile bytes are read whole with one read (their record
// and data in one Buffer); larger ones in pieces as Buffers fill, their
// holes left out when they have some (SEEK_DATA/SEEK_HOLE). What is read
// leaves the kernel's page cache (DropCache).
#include "kernel_api.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "args.h"
#include "copy.h"
#include "exports.h"
#include "queue.h"
#include "xattrs.h"

namespace lklfs {
namespace {

enum Kind : uint32_t { kEntry = 1, kData = 2, kChanged = 3 };
enum Flags : uint32_t { kSparse = 1, kHardLink = 2 };

constexpr size_t kEntryHead = 88;
constexpr size_t kDataHead = 16;
// Data is not started in less room than this: the next Buffer takes it.
constexpr size_t kMinPiece = 64 << 10;
// Directories held open at once (the deepest); those above are opened
// again when the walk comes back to them.
constexpr size_t kOpenDirs = 64;

size_t Pad8(size_t n) { return (n + 7) & ~size_t{7}; }

bool IsType(const struct lkl_stat &st, unsigned type) { return (st.st_mode & LKL_S_IFMT) == type; }

struct Extent {
  int64_t off, len;
};

struct Child {
  std::string name;
  struct lkl_stat st;
};

struct Frame {
  std::string path;  // the kernel's path of the directory
  std::string rel;   // its name in the walk
  long fd;           // -1 when closed (kOpenDirs)
  std::vector<Child> kids;
  size_t next = 0;
};

// The next entry, all its metadata gathered, waiting for room in a Buffer.
struct Entry {
  std::string rel, path;
  struct lkl_stat st;
  uint32_t flags = 0;
  std::string link;
  Xattrs xattrs;
  std::vector<Extent> extents;  // sparse files: where the data is
  int64_t data = 0;             // bytes of data to deliver
  long fd = -1;                 // a file to read, a directory to list
  std::vector<Child> kids;      // a directory's entries
};

size_t EntrySize(const Entry &e) {
  size_t n = kEntryHead + e.extents.size() * 16 + e.rel.size() + e.link.size();
  for (auto &x : e.xattrs) n += 8 + x.first.size() + x.second.size();
  return Pad8(n);
}

class Out {
 public:
  Out(char *buf, size_t cap) : buf_(buf), cap_(cap) {}
  size_t used() const { return at_; }
  size_t room() const { return cap_ - at_; }
  char *here() { return buf_ + at_; }
  void U32(uint32_t v) { Put(&v, 4); }
  void F64(double v) { Put(&v, 8); }
  void Put(const void *p, size_t n) {
    memcpy(buf_ + at_, p, n);
    at_ += n;
  }
  void Bytes(const std::string &s) { Put(s.data(), s.size()); }
  // Past n bytes already written at here().
  void Skip(size_t n) { at_ += n; }
  // Zeros up to the next multiple of 8 from start.
  void PadFrom(size_t start) {
    size_t end = start + Pad8(at_ - start);
    memset(buf_ + at_, 0, end - at_);
    at_ = end;
  }

 private:
  char *buf_;
  size_t cap_;
  size_t at_ = 0;
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
// a file that grew shows without another call): bytes read or -errno.
long ReadAt(long fd, char *buf, int64_t ask, int64_t expect, int64_t off) {
  int64_t got = 0;
  while (got < expect) {
    long n = lkl_sys_pread64(fd, buf + got, ask - got, off + got);
    if (n < 0) return n;
    if (n == 0) break;
    got += n;
  }
  return got;
}

class Tree {
 public:
  // Whatever the walk holds open is closed by Close() (closeTree), on a
  // kernel thread; never by the destructor, which may run on the JS thread.
  Tree(std::string root, int64_t small) : root_(std::move(root)), small_(small) {}

  // The next records into buf; -errno (with *failure) when the walk fails.
  long Fill(char *buf, size_t cap, size_t *used, bool *done, size_t *need, Failure *failure) {
    Out out(buf, cap);
    long ret = 0;
    while (ret >= 0 && !finished_) {
      if (Cancelled()) return -LKL_ECANCELED;
      if (reading_) {
        ret = Stream(&out, failure);
        if (ret < 0 || reading_) break;  // failed, or the Buffer is full
        continue;
      }
      if (!next_) {
        ret = Next(failure);
        if (ret < 0 || finished_) break;
      }
      size_t size = EntrySize(*next_);
      // A small file comes whole with its record: its size + 1 bytes are read.
      bool whole = IsType(next_->st, LKL_S_IFREG) && next_->fd >= 0 && next_->st.st_size <= small_;
      if (whole) size += Pad8(kDataHead + next_->data + 1);
      if (size > out.room()) {
        if (out.used() == 0) *need = size;
        break;
      }
      ret = Emit(&out, whole, failure);
    }
    *used = out.used();
    *done = finished_;
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
    finished_ = true;
  }

 private:
  // Gathers the next entry into next_, or sets finished_.
  long Next(Failure *failure) {
    auto e = std::make_unique<Entry>();
    long dirfd = LKL_AT_FDCWD;
    std::string name;
    if (!started_) {
      started_ = true;
      e->path = name = root_;
      long ret = lkl_sys_newfstatat(LKL_AT_FDCWD, root_.c_str(), &e->st, LKL_AT_SYMLINK_NOFOLLOW);
      if (ret < 0) return Fail(failure, "lstat", root_, ret);
    } else {
      while (!stack_.empty() && stack_.back().next == stack_.back().kids.size()) {
        if (stack_.back().fd >= 0) lkl_sys_close(stack_.back().fd);
        stack_.pop_back();
      }
      if (stack_.empty()) {
        finished_ = true;
        return 0;
      }
      Frame &f = stack_.back();
      if (f.fd < 0) {
        f.fd = lkl_sys_openat(LKL_AT_FDCWD, f.path.c_str(), LKL_O_RDONLY | LKL_O_DIRECTORY | LKL_O_CLOEXEC, 0);
        if (f.fd < 0) return Fail(failure, "open", f.path, f.fd);
      }
      Child &c = f.kids[f.next++];
      name = c.name;
      e->rel = f.rel.empty() ? c.name : f.rel + "/" + c.name;
      e->path = f.path + "/" + c.name;
      e->st = c.st;
      dirfd = f.fd;
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
  // symlink's target, xattrs, a directory's entries, how a file's data comes.
  long Describe(Entry *e, long dirfd, const std::string &name, Failure *failure) {
    const struct lkl_stat &st = e->st;
    bool dir = IsType(st, LKL_S_IFDIR), file = IsType(st, LKL_S_IFREG);
    if (!dir && !IsType(st, LKL_S_IFSOCK) && st.st_nlink > 1) {
      auto seen = links_.emplace(std::make_pair(st.st_dev, st.st_ino), e->rel);
      if (!seen.second) {
        e->flags |= kHardLink;
        e->link = seen.first->second;
        return 0;
      }
    }
    long ret = 0;
    if (file || dir) {
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
    if (dir) {
      ret = List(e->fd, &e->kids, &e->path, failure);
      if (ret < 0) return ret;
    }
    if (!file) return 0;
    e->data = st.st_size;
    // Fewer blocks than the size needs: perhaps holes (or an inline file).
    if (st.st_size > small_ && st.st_blocks * 512 < st.st_size) {
      ret = MapData(e);
      if (ret < 0) return Fail(failure, "lseek", e->path, ret);
    }
    return 0;
  }

  // A directory's entries with their lstat, in the order of their names' bytes.
  long List(long fd, std::vector<Child> *kids, std::string *path, Failure *failure) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      long n = lkl_sys_getdents64(fd, reinterpret_cast<struct lkl_linux_dirent64 *>(buf.data()), buf.size());
      if (n < 0) return Fail(failure, "scandir", *path, n);
      if (n == 0) break;
      for (long at = 0; at < n;) {
        auto *de = reinterpret_cast<struct lkl_linux_dirent64 *>(buf.data() + at);
        at += de->d_reclen;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        kids->push_back(Child{de->d_name, {}});
      }
    }
    for (auto &c : *kids) {
      long ret = lkl_sys_newfstatat(fd, c.name.c_str(), &c.st, LKL_AT_SYMLINK_NOFOLLOW);
      if (ret < 0) return Fail(failure, "lstat", *path + "/" + c.name, ret);
    }
    std::sort(kids->begin(), kids->end(), [](const Child &a, const Child &b) { return a.name < b.name; });
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
    e->flags |= kSparse;
    e->extents = std::move(map);
    e->data = data;
    return 0;
  }

  // next_'s record (and with whole, its data) into out, which has the room.
  long Emit(Out *out, bool whole, Failure *failure) {
    std::unique_ptr<Entry> e = std::move(next_);
    const struct lkl_stat &st = e->st;
    size_t start = out->used();
    out->U32(kEntry);
    out->U32(EntrySize(*e));
    out->U32(st.st_mode);
    out->U32(st.st_uid);
    out->U32(st.st_gid);
    // The kernel's new_encode_dev() layout of st_rdev.
    out->U32((st.st_rdev >> 8) & 0xfff);
    out->U32((st.st_rdev & 0xff) | ((st.st_rdev >> 12) & 0xfff00));
    out->U32(st.st_mtime_nsec);
    out->U32(st.st_atime_nsec);
    out->U32(e->flags);
    out->U32(e->rel.size());
    out->U32(e->link.size());
    out->U32(e->xattrs.size());
    out->U32(e->extents.size());
    out->F64(st.st_size);
    out->F64(st.lkl_st_mtime);
    out->F64(st.lkl_st_atime);
    out->F64(e->fd >= 0 && IsType(st, LKL_S_IFREG) ? e->data : 0);
    for (auto &x : e->extents) {
      out->F64(x.off);
      out->F64(x.len);
    }
    out->Bytes(e->rel);
    out->Bytes(e->link);
    for (auto &x : e->xattrs) {
      out->U32(x.first.size());
      out->U32(x.second.size());
      out->Bytes(x.first);
      out->Bytes(x.second);
    }
    out->PadFrom(start);
    if (IsType(st, LKL_S_IFDIR)) {
      stack_.push_back(Frame{e->path, e->rel, e->fd, std::move(e->kids)});
      if (stack_.size() > kOpenDirs) {
        Frame &above = stack_[stack_.size() - 1 - kOpenDirs];
        if (above.fd >= 0) lkl_sys_close(above.fd);
        above.fd = -1;
      }
      return 0;
    }
    if (e->fd < 0) return 0;
    if (whole) {
      // One byte more than the size: a file that grew shows too.
      long got = ReadAt(e->fd, out->here() + kDataHead, e->data + 1, e->data, 0);
      DropCache(e->fd, 0, 0);
      lkl_sys_close(e->fd);
      if (got < 0) return Fail(failure, "read", e->path, got);
      if (got != e->data) return Changed(out);
      if (got > 0) DataHead(out, got);
      return 0;
    }
    if (e->data == 0) {
      lkl_sys_close(e->fd);
      return 0;
    }
    file_ = e->fd;
    file_path_ = e->path;
    file_size_ = st.st_size;
    pieces_ = e->flags & kSparse ? std::move(e->extents) : std::vector<Extent>{{0, st.st_size}};
    piece_ = 0;
    piece_done_ = 0;
    reading_ = true;
    return 0;
  }

  // The data of the file being read, into out as far as it has room.
  long Stream(Out *out, Failure *failure) {
    while (piece_ < pieces_.size()) {
      if (out->room() < kMinPiece) return 0;
      const Extent &p = pieces_[piece_];
      int64_t off = p.off + piece_done_;
      int64_t want = std::min<int64_t>(p.len - piece_done_, out->room() - kDataHead - 8);
      // At the file's end, one byte more: a file that grew shows too.
      int64_t ask = off + want == file_size_ ? want + 1 : want;
      long got = ReadAt(file_, out->here() + kDataHead, ask, want, off);
      DropCache(file_, off, want);
      if (got < 0) return Fail(failure, "read", file_path_, got);
      if (got != want) return Changed(out);
      DataHead(out, got);
      piece_done_ += want;
      if (piece_done_ == p.len) {
        piece_++;
        piece_done_ = 0;
      }
    }
    lkl_sys_close(file_);
    reading_ = false;
    return 0;
  }

  // A data record of n bytes, the bytes already in place after its head.
  void DataHead(Out *out, size_t n) {
    size_t start = out->used();
    out->U32(kData);
    out->U32(Pad8(kDataHead + n));
    out->U32(n);
    out->U32(0);
    out->Skip(n);
    out->PadFrom(start);
  }

  long Changed(Out *out) {
    if (reading_) lkl_sys_close(file_);
    reading_ = false;
    out->U32(kChanged);
    out->U32(8);
    finished_ = true;
    return 0;
  }

  long Fail(Failure *failure, const char *syscall, const std::string &path, long err) {
    *failure = Failure{syscall, path};
    return err;
  }

  const std::string root_;
  const int64_t small_;
  bool started_ = false, finished_ = false;
  std::vector<Frame> stack_;
  std::unique_ptr<Entry> next_;
  // The first name of each inode with several, by (dev, ino).
  std::map<std::pair<uint64_t, uint64_t>, std::string> links_;
  // The file whose data is being read: its pieces, how far.
  bool reading_ = false;
  long file_ = -1;
  std::string file_path_;
  int64_t file_size_ = 0;
  std::vector<Extent> pieces_;
  size_t piece_ = 0;
  int64_t piece_done_ = 0;
};

// Trees by handle; touched on the JS thread only (the work holds its own reference).
std::unordered_map<uint32_t, std::shared_ptr<Tree>> trees;
uint32_t last_handle;

std::shared_ptr<Tree> TreeArg(const Napi::CallbackInfo &info) {
  auto it = trees.find(IntArg(info, 0));
  if (it == trees.end()) throw Napi::TypeError::New(info.Env(), "not an open tree");
  return it->second;
}

Napi::Value OpenTree(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  int64_t small = IntArg(info, 1);
  trees.emplace(++last_handle, std::make_shared<Tree>(path, small));
  return Napi::Number::New(info.Env(), last_handle);
}

Napi::Value ReadTree(const Napi::CallbackInfo &info) {
  std::shared_ptr<Tree> tree = TreeArg(info);
  if (!info[1].IsBuffer()) throw Napi::TypeError::New(info.Env(), "argument 1 must be a Buffer");
  auto buffer = info[1].As<Napi::Buffer<char>>();
  if (buffer.Length() < 2 * kMinPiece)
    throw Napi::RangeError::New(info.Env(), "the Buffer must hold at least 128 KiB");
  char *data = buffer.Data();
  size_t cap = buffer.Length();
  struct Result {
    size_t used = 0, need = 0;
    bool done = false;
  };
  auto result = std::make_shared<Result>();
  auto failure = std::make_shared<Failure>();
  return Submit(
      info.Env(), "read", "",
      [=] { return tree->Fill(data, cap, &result->used, &result->done, &result->need, failure.get()); },
      [result](Napi::Env env, long) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("used", Napi::Number::New(env, result->used));
        o.Set("done", Napi::Boolean::New(env, result->done));
        o.Set("need", Napi::Number::New(env, result->need));
        return o;
      },
      {buffer}, failure);
}

Napi::Value CloseTree(const Napi::CallbackInfo &info) {
  std::shared_ptr<Tree> tree = TreeArg(info);
  trees.erase(IntArg(info, 0));
  return Submit(info.Env(), "close", "", [tree] {
    tree->Close();
    return 0L;
  });
}

}  // namespace

void RegisterTree(Napi::Env env, Napi::Object exports) {
  exports.Set("openTree", Napi::Function::New(env, OpenTree, "openTree"));
  exports.Set("readTree", Napi::Function::New(env, ReadTree, "readTree"));
  exports.Set("closeTree", Napi::Function::New(env, CloseTree, "closeTree"));
}

}  // namespace lklfs
