// SPDX-License-Identifier: GPL-2.0
// Extended attributes and timestamps, shared by the kernel side (paths.cc)
// and the host side (host.cc) of the binding.
#pragma once

#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lklfs {

using Xattrs = std::vector<std::pair<std::string, std::string>>;

// Every attribute through list(buf, len) and get(name, buf, len), which
// return a length or a negative errno: -ERANGE grows the buffer, an
// attribute gone meanwhile is skipped, -EOPNOTSUPP means none.
template <typename List, typename Get>
long CollectXattrs(List list, Get get, Xattrs *out) {
  std::string names(4096, '\0');
  long n;
  while ((n = list(names.data(), names.size())) == -ERANGE) names.resize(names.size() * 4);
  if (n == -EOPNOTSUPP) return 0;
  if (n < 0) return n;
  for (size_t at = 0; at < static_cast<size_t>(n);) {
    std::string name(names.data() + at);
    at += name.size() + 1;
    std::string value(256, '\0');
    long len;
    while ((len = get(name.c_str(), value.data(), value.size())) == -ERANGE) value.resize(value.size() * 16);
    if (len == -ENODATA) continue;
    if (len < 0) return len;
    value.resize(len);
    out->emplace_back(std::move(name), std::move(value));
  }
  return 0;
}

// Attributes that are no file's own, left out of copies as cp -a leaves
// them out (attr's xattr.conf; src/engine/xattrs.ts says the same): XFS
// shows its ACLs to root a second time as trusted.SGI_ACL_*, and
// security.evm is a signature only the kernel that made it may write.
inline bool NotCopied(const std::string &name) {
  return name.rfind("trusted.SGI_", 0) == 0 || name.rfind("xfsroot.", 0) == 0 || name == "security.evm";
}

// A file's own attribute, in a namespace Linux can set (not, say, ntfs3's
// $LXUID): what a copy or an archive carries.
inline bool FileOwn(const std::string &name) {
  for (const char *ns : {"user.", "trusted.", "security.", "system."})
    if (name.rfind(ns, 0) == 0) return !NotCopied(name);
  return false;
}

// Every extended attribute of a host path (host.cc).
long ReadHostXattrs(const std::string &path, Xattrs *out);

// [{ name, value: Buffer }]
inline Napi::Array XattrArray(Napi::Env env, const Xattrs &xattrs) {
  Napi::Array a = Napi::Array::New(env, xattrs.size());
  for (size_t i = 0; i < xattrs.size(); i++) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("name", xattrs[i].first);
    x.Set("value", Napi::Buffer<char>::Copy(env, xattrs[i].second.data(), xattrs[i].second.size()));
    a.Set(i, x);
  }
  return a;
}

// Nanoseconds since the epoch as a timespec (tv_nsec >= 0 before 1970 too).
template <typename Timespec>
Timespec SplitNs(int64_t ns) {
  Timespec ts;
  ts.tv_sec = ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  if (ts.tv_nsec < 0) {
    ts.tv_sec--;
    ts.tv_nsec += 1000000000;
  }
  return ts;
}

}  // namespace lklfs
