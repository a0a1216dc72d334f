// SPDX-License-Identifier: GPL-2.0
// What Node's fs cannot do on the host side of a copy: extended attributes
// (capabilities, SELinux labels, ACLs) and timestamps to the nanosecond on
// symlinks. Host errors come back like kernel ones (negative errno).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "args.h"
#include "exports.h"
#include "queue.h"
#include "stat.h"
#include "xattrs.h"

namespace lklfs {
namespace {

}  // namespace

long ReadHostXattrs(const std::string &path, Xattrs *out) {
  return CollectXattrs(
      [&](char *buf, size_t len) -> long {
        ssize_t n = llistxattr(path.c_str(), buf, len);
        return n < 0 ? -errno : n;
      },
      [&](const char *name, char *buf, size_t len) -> long {
        ssize_t n = lgetxattr(path.c_str(), name, buf, len);
        return n < 0 ? -errno : n;
      },
      out);
}

namespace {

Napi::Value HostGetXattrs(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  auto xattrs = std::make_shared<Xattrs>();
  return Submit(
      info.Env(), "llistxattr", path, [=] { return ReadHostXattrs(path, xattrs.get()); },
      [xattrs](Napi::Env env, long) { return XattrArray(env, *xattrs); });
}

Napi::Value HostSetXattr(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0), name = StringArg(info, 1);
  if (!info[2].IsBuffer()) throw Napi::TypeError::New(info.Env(), "the value must be a Buffer");
  auto b = info[2].As<Napi::Buffer<char>>();
  std::string value(b.Data(), b.Length());
  return Submit(info.Env(), "lsetxattr", path, [=]() -> long {
    return lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) ? -errno : 0;
  });
}

Napi::Value HostLutimes(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  int64_t at = IntArg(info, 1), mt = IntArg(info, 2);
  return Submit(info.Env(), "utimensat", path, [=]() -> long {
    struct timespec ts[2] = {SplitNs<struct timespec>(at), SplitNs<struct timespec>(mt)};
    return utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
  });
}

struct HostEntry {
  std::string name;
  struct stat st;
  std::string target;  // symlinks
};

// hostReaddirStat(dir) -> [{ name: Buffer, stat, target? }], sorted by name bytes,
// stat as the kernel side's (BigInt ns times, major/minor): what a copy
// into the image walks, one trip per directory.
long ListHostDir(const std::string &dir, std::vector<HostEntry> *out, Failure *failure) {
  DIR *d = opendir(dir.c_str());
  if (!d) {
    *failure = {"scandir", dir};
    return -errno;
  }
  int fd = dirfd(d);
  for (;;) {
    // readdir's end and its failure differ only by errno, which the calls
    // below may leave set even when they succeed.
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) break;
    std::string name(de->d_name);
    if (name == "." || name == "..") continue;
    HostEntry e{name, {}, {}};
    const char *call = "lstat";
    bool ok = fstatat(fd, de->d_name, &e.st, AT_SYMLINK_NOFOLLOW) == 0;
    if (ok && S_ISLNK(e.st.st_mode)) {
      call = "readlink";
      e.target.resize(e.st.st_size + 1);
      ssize_t n = readlinkat(fd, de->d_name, e.target.data(), e.target.size());
      ok = n >= 0;
      e.target.resize(ok ? n : 0);
    }
    if (!ok) {
      long err = -errno;
      *failure = {call, dir + "/" + name};
      closedir(d);
      return err;
    }
    out->push_back(std::move(e));
  }
  long err = errno ? -errno : 0;
  closedir(d);
  if (err) *failure = {"scandir", dir};
  std::sort(out->begin(), out->end(), [](const HostEntry &a, const HostEntry &b) { return a.name < b.name; });
  return err;
}

Napi::Value HostReaddirStat(const Napi::CallbackInfo &info) {
  std::string dir = PathArg(info, 0);
  auto entries = std::make_shared<std::vector<HostEntry>>();
  auto failure = std::make_shared<Failure>();
  return Submit(
      info.Env(), "scandir", dir, [=] { return ListHostDir(dir, entries.get(), failure.get()); },
      [entries](Napi::Env env, long) {
        Napi::Array a = Napi::Array::New(env, entries->size());
        for (size_t i = 0; i < entries->size(); i++) {
          const HostEntry &e = (*entries)[i];
          Napi::Object o = Napi::Object::New(env);
          o.Set("name", Napi::Buffer<char>::Copy(env, e.name.data(), e.name.size()));
          o.Set("stat", HostStatObject(env, e.st));
          if (S_ISLNK(e.st.st_mode)) o.Set("target", Napi::Buffer<char>::Copy(env, e.target.data(), e.target.size()));
          a.Set(i, o);
        }
        return a;
      },
      {}, failure);
}

}  // namespace

void RegisterHost(Napi::Env env, Napi::Object exports) {
  exports.Set("hostGetXattrs", Napi::Function::New(env, HostGetXattrs, "hostGetXattrs"));
  exports.Set("hostSetXattr", Napi::Function::New(env, HostSetXattr, "hostSetXattr"));
  exports.Set("hostReaddirStat", Napi::Function::New(env, HostReaddirStat, "hostReaddirStat"));
  exports.Set("hostLutimes", Napi::Function::New(env, HostLutimes, "hostLutimes"));
}

}  // namespace lklfs
