// SPDX-License-Identifier: GPL-2.0
// struct lkl_stat as a JS object. Times are BigInt nanoseconds since the
// epoch (exact, as tar's PAX headers and utimensat want them); ino is a
// BigInt because xfs uses all 64 bits; rdev comes as major and minor.
#pragma once

#include <napi.h>

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "kernel_api.h"

namespace lklfs {

inline Napi::BigInt Nanoseconds(Napi::Env env, long sec, unsigned long nsec) {
  return Napi::BigInt::New(env, static_cast<int64_t>(sec * 1000000000L + static_cast<long>(nsec)));
}

// The fields both struct stat and struct lkl_stat have, rdev split.
template <typename Stat>
Napi::Object StatFields(Napi::Env env, const Stat &st, unsigned long major, unsigned long minor) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("dev", Napi::Number::New(env, st.st_dev));
  o.Set("ino", Napi::BigInt::New(env, static_cast<uint64_t>(st.st_ino)));
  o.Set("mode", Napi::Number::New(env, st.st_mode));
  o.Set("nlink", Napi::Number::New(env, st.st_nlink));
  o.Set("uid", Napi::Number::New(env, st.st_uid));
  o.Set("gid", Napi::Number::New(env, st.st_gid));
  o.Set("rdevMajor", Napi::Number::New(env, major));
  o.Set("rdevMinor", Napi::Number::New(env, minor));
  o.Set("size", Napi::Number::New(env, st.st_size));
  o.Set("blocks", Napi::Number::New(env, st.st_blocks));
  return o;
}

inline Napi::Object StatObject(Napi::Env env, const struct lkl_stat &st) {
  Napi::Object o = StatFields(env, st, DevMajor(st.st_rdev), DevMinor(st.st_rdev));
  o.Set("atimeNs", Nanoseconds(env, st.lkl_st_atime, st.st_atime_nsec));
  o.Set("mtimeNs", Nanoseconds(env, st.lkl_st_mtime, st.st_mtime_nsec));
  o.Set("ctimeNs", Nanoseconds(env, st.lkl_st_ctime, st.st_ctime_nsec));
  return o;
}

// A host lstat in the same shape.
inline Napi::Object HostStatObject(Napi::Env env, const struct stat &st) {
  Napi::Object o = StatFields(env, st, major(st.st_rdev), minor(st.st_rdev));
  o.Set("atimeNs", Nanoseconds(env, st.st_atim.tv_sec, st.st_atim.tv_nsec));
  o.Set("mtimeNs", Nanoseconds(env, st.st_mtim.tv_sec, st.st_mtim.tv_nsec));
  o.Set("ctimeNs", Nanoseconds(env, st.st_ctim.tv_sec, st.st_ctim.tv_nsec));
  return o;
}

}  // namespace lklfs
