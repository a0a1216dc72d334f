// SPDX-License-Identifier: GPL-2.0
// libfuse3, loaded when a mount starts (dlopen), never linked: lklfs.node
// must load, and every other command work, on machines without it. The
// headers (libfuse3-dev) are only needed to build.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <string>

namespace lklfs {

// The library functions the mount uses, each typed as its declaration.
#define LKLFS_FUSE_FUNCTIONS(X)                                                                  \
  X(fuse_session_new)                                                                            \
  X(fuse_session_mount)                                                                          \
  X(fuse_session_fd)                                                                             \
  X(fuse_session_receive_buf)                                                                    \
  X(fuse_session_process_buf)                                                                    \
  X(fuse_session_exited)                                                                         \
  X(fuse_session_unmount)                                                                        \
  X(fuse_session_destroy)                                                                        \
  X(fuse_set_log_func)                                                                           \
  X(fuse_opt_add_arg)                                                                            \
  X(fuse_opt_free_args)                                                                          \
  X(fuse_req_ctx)                                                                                \
  X(fuse_reply_err)                                                                              \
  X(fuse_reply_none)                                                                             \
  X(fuse_reply_entry)                                                                            \
  X(fuse_reply_create)                                                                           \
  X(fuse_reply_attr)                                                                             \
  X(fuse_reply_readlink)                                                                         \
  X(fuse_reply_open)                                                                             \
  X(fuse_reply_write)                                                                            \
  X(fuse_reply_buf)                                                                              \
  X(fuse_reply_statfs)                                                                           \
  X(fuse_reply_xattr)                                                                            \
  X(fuse_reply_lseek)                                                                            \
  X(fuse_add_direntry)                                                                           \
  X(fuse_add_direntry_plus)

struct FuseLib {
#define LKLFS_FUSE_MEMBER(name) decltype(&::name) name;
  LKLFS_FUSE_FUNCTIONS(LKLFS_FUSE_MEMBER)
#undef LKLFS_FUSE_MEMBER
};

// The library, loaded on first use; nullptr (and the reason in *why) if
// this machine has none.
const FuseLib *LoadFuse(std::string *why);

}  // namespace lklfs
