// SPDX-License-Identifier: GPL-2.0
// System calls on paths inside the kernel (which never follow a final
// symlink unless their name says so), and readdirStat, which reads a whole
// directory with every entry's metadata in one trip to a kernel thread.
#include "kernel_api.h"

#include <algorithm>
#include <vector>

#include "args.h"
#include "exports.h"
#include "queue.h"
#include "stat.h"
#include "xattrs.h"

namespace lklfs {
namespace {

constexpr long kCwd = LKL_AT_FDCWD;
constexpr long kNoFollow = LKL_AT_SYMLINK_NOFOLLOW;

Napi::Value Lstat(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  auto st = std::make_shared<struct lkl_stat>();
  return Submit(
      info.Env(), "lstat", path, [=] { return lkl_sys_newfstatat(kCwd, path.c_str(), st.get(), kNoFollow); },
      [st](Napi::Env env, long) { return StatObject(env, *st); });
}

// Reads a symlink's target (bytes) into *target.
long ReadLink(int dirfd, const std::string &path, std::string *target) {
  target->resize(4096);
  long n = lkl_sys_readlinkat(dirfd, path.c_str(), target->data(), target->size());
  target->resize(n < 0 ? 0 : n);
  return n;
}

Napi::Value Readlink(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  auto target = std::make_shared<std::string>();
  return Submit(
      info.Env(), "readlink", path, [=] { return ReadLink(kCwd, path, target.get()); },
      [target](Napi::Env env, long) { return Napi::Buffer<char>::Copy(env, target->data(), target->size()); });
}

// Every extended attribute of path (not following a final symlink).
long ReadXattrs(const std::string &path, Xattrs *out) {
  return CollectXattrs(
      [&](char *buf, size_t len) { return lkl_sys_llistxattr(path.c_str(), buf, len); },
      [&](const char *name, char *buf, size_t len) { return lkl_sys_lgetxattr(path.c_str(), name, buf, len); },
      out);
}

Napi::Value GetXattrs(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  auto xattrs = std::make_shared<Xattrs>();
  return Submit(
      info.Env(), "llistxattr", path, [=] { return ReadXattrs(path, xattrs.get()); },
      [xattrs](Napi::Env env, long) { return XattrArray(env, *xattrs); });
}

struct Entry {
  std::string name;
  struct lkl_stat st;
  std::string target;  // symlinks
  Xattrs xattrs;
  bool has_data = false;
  std::string data;  // small regular files, when asked for
};

// All the small files' data one listing brings along: bounds its memory.
constexpr size_t kDataTotal = 8 << 20;

// A whole small file: false (and no data) if it is not exactly size bytes
// now; the caller then reads it the usual way and sees why.
bool ReadWhole(int dirfd, const Entry &e, std::string *data) {
  long fd = lkl_sys_openat(dirfd, e.name.c_str(), LKL_O_RDONLY | LKL_O_NOFOLLOW | LKL_O_CLOEXEC, 0);
  if (fd < 0) return false;
  data->resize(e.st.st_size + 1);
  size_t got = 0;
  long n;
  while (got < data->size() && (n = lkl_sys_pread64(fd, data->data() + got, data->size() - got, got)) > 0) got += n;
  DropCache(fd, 0, 0);
  lkl_sys_close(fd);
  data->resize(got);
  return got == static_cast<size_t>(e.st.st_size);
}

struct Listing {
  std::vector<Entry> entries;
  std::string failed;  // the entry a failure was about
};

// readdirStat(dir, withXattrs, dataLimit) -> [{ name: Buffer, stat,
// target?, xattrs?, data? }] in the order of the names' bytes: a walk over
// it is reproducible. data: the contents of regular files up to dataLimit
// bytes (while the listing's total stays under kDataTotal), so that an
// archive of many small files costs no trip per file.
long ListDir(const std::string &dir, bool with_xattrs, size_t data_limit, Listing *out) {
  long fd = lkl_sys_openat(kCwd, dir.c_str(), LKL_O_RDONLY | LKL_O_DIRECTORY | LKL_O_CLOEXEC, 0);
  if (fd < 0) return fd;
  std::vector<char> buf(64 * 1024);
  long ret = 0;
  size_t total = 0;
  for (;;) {
    long n = lkl_sys_getdents64(fd, reinterpret_cast<struct lkl_linux_dirent64 *>(buf.data()), buf.size());
    if (n <= 0) {
      ret = n;
      break;
    }
    for (long at = 0; at < n;) {
      auto *de = reinterpret_cast<struct lkl_linux_dirent64 *>(buf.data() + at);
      at += de->d_reclen;
      std::string name(de->d_name);
      if (name == "." || name == "..") continue;
      out->entries.push_back(Entry{std::move(name), {}, {}, {}, false, {}});
    }
  }
  for (auto &e : out->entries) {
    if (ret < 0) break;
    std::string path = dir + "/" + e.name;
    ret = lkl_sys_newfstatat(fd, e.name.c_str(), &e.st, kNoFollow);
    if (ret >= 0 && (e.st.st_mode & LKL_S_IFMT) == LKL_S_IFLNK) ret = ReadLink(fd, e.name, &e.target);
    if (ret >= 0 && with_xattrs) ret = ReadXattrs(path, &e.xattrs);
    if (ret < 0) out->failed = path;
    bool small = (e.st.st_mode & LKL_S_IFMT) == LKL_S_IFREG && static_cast<size_t>(e.st.st_size) <= data_limit;
    if (ret >= 0 && small && total + e.st.st_size <= kDataTotal && ReadWhole(fd, e, &e.data)) {
      e.has_data = true;
      total += e.data.size();
    }
  }
  lkl_sys_close(fd);
  std::sort(out->entries.begin(), out->entries.end(),
            [](const Entry &a, const Entry &b) { return a.name < b.name; });
  return ret < 0 ? ret : 0;
}

Napi::Value ReaddirStat(const Napi::CallbackInfo &info) {
  std::string dir = PathArg(info, 0);
  bool with_xattrs = BoolArg(info, 1);
  size_t data_limit = info.Length() > 2 ? IntArg(info, 2) : 0;
  auto listing = std::make_shared<Listing>();
  return Submit(
      info.Env(), "scandir", dir, [=] { return ListDir(dir, with_xattrs, data_limit, listing.get()); },
      [listing, with_xattrs](Napi::Env env, long) {
        Napi::Array a = Napi::Array::New(env, listing->entries.size());
        for (size_t i = 0; i < listing->entries.size(); i++) {
          const Entry &e = listing->entries[i];
          Napi::Object o = Napi::Object::New(env);
          o.Set("name", Napi::Buffer<char>::Copy(env, e.name.data(), e.name.size()));
          o.Set("stat", StatObject(env, e.st));
          if ((e.st.st_mode & LKL_S_IFMT) == LKL_S_IFLNK)
            o.Set("target", Napi::Buffer<char>::Copy(env, e.target.data(), e.target.size()));
          if (with_xattrs) o.Set("xattrs", XattrArray(env, e.xattrs));
          if (e.has_data) o.Set("data", Napi::Buffer<char>::Copy(env, e.data.data(), e.data.size()));
          a.Set(i, o);
        }
        return a;
      });
}

// readFiles(paths, sizes) -> [Buffer | null]: small files read whole in
// one trip (the walker asks for those its listing could not bring); null
// where a file is no longer the size given.
Napi::Value ReadFiles(const Napi::CallbackInfo &info) {
  if (!info[0].IsArray() || !info[1].IsArray())
    throw Napi::TypeError::New(info.Env(), "readFiles takes an array of paths and one of sizes");
  auto paths = info[0].As<Napi::Array>();
  auto sizes = info[1].As<Napi::Array>();
  auto files = std::make_shared<std::vector<Entry>>();
  for (uint32_t i = 0; i < paths.Length(); i++) {
    Napi::Value p = paths.Get(i);
    if (!p.IsBuffer()) throw Napi::TypeError::New(info.Env(), "paths must be Buffers");
    Entry e{std::string(p.As<Napi::Buffer<char>>().Data(), p.As<Napi::Buffer<char>>().Length()), {}, {}, {}, false, {}};
    e.st.st_size = sizes.Get(i).ToNumber().Int64Value();
    files->push_back(std::move(e));
  }
  return Submit(
      info.Env(), "read", "",
      [files]() -> long {
        for (Entry &e : *files) e.has_data = ReadWhole(kCwd, e, &e.data);
        return 0;
      },
      [files](Napi::Env env, long) {
        Napi::Array a = Napi::Array::New(env, files->size());
        for (size_t i = 0; i < files->size(); i++) {
          const Entry &e = (*files)[i];
          a.Set(i, e.has_data ? Napi::Buffer<char>::Copy(env, e.data.data(), e.data.size()).As<Napi::Value>()
                              : env.Null());
        }
        return a;
      });
}

Napi::Value Mkdir(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  long mode = IntArg(info, 1);
  return Submit(info.Env(), "mkdir", path, [=] { return lkl_sys_mkdirat(kCwd, path.c_str(), mode); });
}

Napi::Value Symlink(const Napi::CallbackInfo &info) {
  std::string target = PathArg(info, 0), path = PathArg(info, 1);
  return Submit(info.Env(), "symlink", path,
                [=] { return lkl_sys_symlinkat(target.c_str(), kCwd, path.c_str()); });
}

Napi::Value Link(const Napi::CallbackInfo &info) {
  std::string existing = PathArg(info, 0), path = PathArg(info, 1);
  return Submit(info.Env(), "link", path,
                [=] { return lkl_sys_linkat(kCwd, existing.c_str(), kCwd, path.c_str(), 0); });
}

// mknod(path, mode, major, minor): devices, fifos, sockets.
Napi::Value Mknod(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  long mode = IntArg(info, 1);
  unsigned long dev = EncodeDev(IntArg(info, 2), IntArg(info, 3));
  return Submit(info.Env(), "mknod", path, [=] { return lkl_sys_mknodat(kCwd, path.c_str(), mode, dev); });
}

Napi::Value Lchown(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  long uid = IntArg(info, 1), gid = IntArg(info, 2);
  return Submit(info.Env(), "lchown", path,
                [=] { return lkl_sys_fchownat(kCwd, path.c_str(), uid, gid, kNoFollow); });
}

// Symlinks have no mode of their own: chmod follows the path.
Napi::Value Chmod(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  long mode = IntArg(info, 1);
  return Submit(info.Env(), "chmod", path, [=] { return lkl_sys_fchmodat(kCwd, path.c_str(), mode); });
}

// lutimes(path, atimeNs, mtimeNs): BigInt nanoseconds, symlinks included.
Napi::Value Lutimes(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  int64_t at = IntArg(info, 1), mt = IntArg(info, 2);
  return Submit(info.Env(), "utimensat", path, [=] {
    struct __lkl__kernel_timespec ts[2] = {SplitNs<struct __lkl__kernel_timespec>(at),
                                          SplitNs<struct __lkl__kernel_timespec>(mt)};
    return lkl_sys_utimensat(kCwd, path.c_str(), ts, kNoFollow);
  });
}

Napi::Value Lsetxattr(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0), name = StringArg(info, 1);
  if (!info[2].IsBuffer()) throw Napi::TypeError::New(info.Env(), "the value must be a Buffer");
  auto b = info[2].As<Napi::Buffer<char>>();
  std::string value(b.Data(), b.Length());
  return Submit(info.Env(), "lsetxattr", path,
                [=] { return lkl_sys_lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0); });
}

Napi::Value Unlink(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  return Submit(info.Env(), "unlink", path, [=] { return lkl_sys_unlinkat(kCwd, path.c_str(), 0); });
}

Napi::Value Rmdir(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  return Submit(info.Env(), "rmdir", path,
                [=] { return lkl_sys_unlinkat(kCwd, path.c_str(), LKL_AT_REMOVEDIR); });
}

Napi::Value Rename(const Napi::CallbackInfo &info) {
  std::string from = PathArg(info, 0), to = PathArg(info, 1);
  return Submit(info.Env(), "rename", from,
                [=] { return lkl_sys_renameat(kCwd, from.c_str(), kCwd, to.c_str()); });
}

// statfs(path) -> sizes in bytes and inode counts
Napi::Value Statfs(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  auto st = std::make_shared<struct lkl_statfs>();
  return Submit(
      info.Env(), "statfs", path, [=] { return lkl_sys_statfs(path.c_str(), st.get()); },
      [st](Napi::Env env, long) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("type", Napi::Number::New(env, st->f_type));
        o.Set("blockSize", Napi::Number::New(env, st->f_bsize));
        o.Set("blocks", Napi::Number::New(env, st->f_blocks));
        o.Set("blocksFree", Napi::Number::New(env, st->f_bfree));
        o.Set("blocksAvailable", Napi::Number::New(env, st->f_bavail));
        o.Set("files", Napi::Number::New(env, st->f_files));
        o.Set("filesFree", Napi::Number::New(env, st->f_ffree));
        o.Set("readOnly", Napi::Boolean::New(env, st->f_flags & 1 /* ST_RDONLY */));
        return o;
      });
}

Napi::Value Sync(const Napi::CallbackInfo &info) {
  return Submit(info.Env(), "sync", "", [] { return lkl_sys_sync(); });
}

}  // namespace

void RegisterPaths(Napi::Env env, Napi::Object exports) {
  struct {
    const char *name;
    Napi::Value (*fn)(const Napi::CallbackInfo &);
  } fns[] = {
      {"lstat", Lstat},     {"readlink", Readlink}, {"getXattrs", GetXattrs}, {"readdirStat", ReaddirStat},
      {"mkdir", Mkdir},     {"symlink", Symlink},   {"link", Link},           {"mknod", Mknod},
      {"lchown", Lchown},   {"chmod", Chmod},       {"lutimes", Lutimes},     {"lsetxattr", Lsetxattr},
      {"unlink", Unlink},   {"rmdir", Rmdir},       {"rename", Rename},       {"statfs", Statfs},
      {"sync", Sync},       {"readFiles", ReadFiles},
  };
  for (auto &f : fns) exports.Set(f.name, Napi::Function::New(env, f.fn, f.name));
}

}  // namespace lklfs
