// SPDX-License-Identifier: GPL-2.0
// Errors as Node's own fs errors look: code, errno (negative), syscall, path.
#pragma once

#include <napi.h>

#include <string>

namespace lklfs {

// err is a negative errno from the kernel (same numbers as the host's).
Napi::Error ErrnoError(Napi::Env env, long err, const char *syscall, const std::string &path);

}  // namespace lklfs
