// SPDX-License-Identifier: GPL-2.0
// What Node's fs cannot do on the host side of a copy: extended attributes
// (capabilities, SELinux labels, ACLs) and timestamps to the nanosecond on
// symlinks. Host errors come back like kernel ones (negative errno).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cerrno>

#include "args.h"
#include "exports.h"
#include "queue.h"
#include "xattrs.h"

namespace lklfs {
namespace {

long HostXattrList(const std::string &path, Xattrs *out) {
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

Napi::Value HostGetXattrs(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  auto xattrs = std::make_shared<Xattrs>();
  return Submit(
      info.Env(), "llistxattr", path, [=] { return HostXattrList(path, xattrs.get()); },
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

}  // namespace

void RegisterHost(Napi::Env env, Napi::Object exports) {
  exports.Set("hostGetXattrs", Napi::Function::New(env, HostGetXattrs, "hostGetXattrs"));
  exports.Set("hostSetXattr", Napi::Function::New(env, HostSetXattr, "hostSetXattr"));
  exports.Set("hostLutimes", Napi::Function::New(env, HostLutimes, "hostLutimes"));
}

}  // namespace lklfs
