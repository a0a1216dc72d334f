// SPDX-License-Identifier: GPL-2.0
// The inodes a FUSE mount has told the host kernel about. Each holds an
// O_PATH descriptor inside our kernel, so it stays the same file through
// renames and hard links, and its node id (what the host passes back) is
// its address. One kernel inode, one node id: the host's page cache of a
// file reached by two hard links is then one cache.
#pragma once

#include "fuse_lib.h"
#include "kernel_api.h"

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

namespace lklfs {

struct Inode {
  long fd;  // O_PATH | O_NOFOLLOW, in the kernel
  uint64_t dev, ino;
  uint64_t lookups = 0;  // the host's references (guarded by Inodes::lock)
};

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
