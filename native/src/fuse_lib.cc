// SPDX-License-Identifier: GPL-2.0
#include "fuse_lib.h"

#include <dlfcn.h>

#include <mutex>

namespace lklfs {

const FuseLib *LoadFuse(std::string *why) {
  static std::once_flag once;
  static FuseLib lib;
  static const FuseLib *loaded;
  static std::string failure;
  std::call_once(once, [] {
    void *so = dlopen("libfuse3.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!so) {
      failure = dlerror();
      return;
    }
    // fuse_session_new's ABI is the one of libfuse 3.0, by name in later
    // releases that version their symbols.
    void *session_new = dlvsym(so, "fuse_session_new", "FUSE_3.0");
    lib.fuse_session_new = reinterpret_cast<decltype(lib.fuse_session_new)>(
        session_new ? session_new : dlsym(so, "fuse_session_new"));
#define LKLFS_FUSE_LOAD(name)                                           \
  if (!lib.name) lib.name = reinterpret_cast<decltype(lib.name)>(dlsym(so, #name)); \
  if (!lib.name) {                                                      \
    failure = "libfuse3.so.3 has no " #name;                            \
    return;                                                             \
  }
    LKLFS_FUSE_FUNCTIONS(LKLFS_FUSE_LOAD)
#undef LKLFS_FUSE_LOAD
    loaded = &lib;
  });
  if (!loaded) *why = failure;
  return loaded;
}

}  // namespace lklfs
