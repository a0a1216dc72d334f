// SPDX-License-Identifier: GPL-2.0
// The FUSE low-level operations, each served by system calls into our
// kernel on the thread that read the request: no trip through JS.
#pragma once

#include "fuse_inodes.h"
#include "fuse_lib.h"

#include <atomic>
#include <mutex>
#include <set>

namespace lklfs {

struct DirHandle;

// What the operations of one mount share.
struct FuseState {
  const FuseLib *lib;
  Inodes inodes;
  // Open directories, closed when the mount ends (the host sends no
  // release for them once its connection is gone).
  std::mutex handles_lock;
  std::set<DirHandle *> dirs;
  // The filesystem keeps no extended attributes at all (vfat, exfat...).
  std::atomic<bool> no_xattrs{false};
};

// The most a read or a write request carries (max_write, max_readahead).
constexpr unsigned kMaxTransfer = 1 << 20;

// The operations, working on state (one mount per process).
const struct fuse_lowlevel_ops &FuseOperations(FuseState *state);

// Readies a thread that will serve requests (its own umask and the
// caller's owner for what it creates); once per thread, before the first.
// 0 or a negative errno.
long PrepareFuseThread();

// Closes the directories the host left open and lets go of every inode.
void CloseFuseHandles(FuseState *state);

}  // namespace lklfs
