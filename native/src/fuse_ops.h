// SPDX-License-Identifier: GPL-2.0
// The FUSE low-level operations, each served by system calls into our
// kernel on the thread that read the request: no trip through JS.
#pragma once

#include "fuse_inodes.h"
#include "fuse_lib.h"
#include "fuse_listings.h"

#include <atomic>

namespace lklfs {

// What the operations of one mount share.
struct FuseState {
  const FuseLib *lib;
  Inodes inodes;
  Listings listings;
  // The host opens directories without a request (Linux 5.1 and later).
  std::atomic<bool> no_opendir{false};
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

// Closes the listings left open and lets go of every inode.
void CloseFuseHandles(FuseState *state);

}  // namespace lklfs
