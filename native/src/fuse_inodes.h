// SPDX-License-Identifier: GPL-2.0
// The inodes a FUSE mount has told the host kernel about. Each holds an
// O_PATH descriptor inside our kernel, so it stays the same file through
// renames and hard links, and its node id (what the host passes back) is
// its address. One kernel inode, one node id: the host's page cache of a
// file reached by two hard links is then one cache.
//
// The host opens and closes files without telling us (no-open: an open
// costs it no request), so a file's data goes through one descriptor per
// inode, opened on first use and kept as long as the inode.
#pragma once

#include "fuse_lib.h"
#include "kernel_api.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

namespace lklfs {

struct Inode {
  long fd;  // O_PATH | O_NOFOLLOW, in the kernel
  uint64_t dev, ino;
  uint64_t lookups = 0;       // the host's references (guarded by Inodes::lock)
  std::atomic<long> data{-1};  // a regular file's data descriptor, see DataFd()
};

// inode's data descriptor: read-write, or read-only where nothing more is
// allowed (a read-only filesystem, an immutable file); opened on first
// use. A negative errno if it cannot be opened.
long DataFd(Inode *inode);
// Offers fd (open read-write) as inode's data descriptor: kept if it has
// none yet, else closed.
void OfferDataFd(Inode *inode, long fd);

class Inodes {
 public:
  // The mount's root: the host's node 1, never forgotten.
  void SetRoot(long fd, const struct lkl_stat &st);
  Inode *Get(fuse_ino_t id);
  fuse_ino_t Id(Inode *inode) const;
  // The inode of st, now known to the host once more. Takes fd: kept for
  // an inode met the first time, closed if the inode is known already.
  Inode *Remember(long fd, const struct lkl_stat &st);
  // The host dropped n references; the last one closes the descriptor.
  void Forget(fuse_ino_t id, uint64_t n);
  // Closes every descriptor (the mount is over).
  void Clear();

 private:
  std::mutex lock_;
  Inode root_{-1, 0, 0};
  std::map<std::pair<uint64_t, uint64_t>, Inode *> known_;  // (dev, ino)
};

}  // namespace lklfs
