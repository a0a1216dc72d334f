// SPDX-License-Identifier: GPL-2.0
#include "errors.h"

#include <uv.h>

namespace lklfs {

Napi::Error ErrnoError(Napi::Env env, long err, const char *syscall, const std::string &path) {
  // The kernel's errno values are the host's (x86_64 Linux), which are
  // what libuv reports, negated, on Linux: its names and texts fit.
  int code = static_cast<int>(err);
  std::string message = std::string(uv_err_name(code)) + ": " + uv_strerror(code) + ", " + syscall;
  if (!path.empty()) message += " '" + path + "'";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", uv_err_name(code));
  error.Set("errno", Napi::Number::New(env, code));
  error.Set("syscall", syscall);
  if (!path.empty()) error.Set("path", path);
  return error;
}

}  // namespace lklfs
