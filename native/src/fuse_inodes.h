// SPDX-License-Identifier: GPL-2.0
// The inodes a FUSE mount has told the host kernel about. A node id (what
// the host passes back) is an Inode's address; one kernel inode, one node
// id, so that the host's page cache of a file reached by two hard links is
// one cache.
//
// An inode is found again by its file handle (name_to_handle_at), not kept
// open: the host may know of far more inodes than our kernel's memory
// could hold open (it forgets them only under its own memory pressure).
// Filesystems without file handles (exfat, hfsplus) pin each inode with an
// O_PATH descriptor instead; so is any inode unlinked while the host still
// knows it, whose data must live on as an open file's does.
#pragma once

#include "fuse_lib.h"
#include "kernel_api.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace lklfs {

struct Inode {
  uint64_t dev, ino;
  uint64_t lookups = 0;       // the host's references (guarded by Inodes::lock_)
  std::string handle;         // a struct file_handle, if the filesystem gives one
  std::atomic<long> pin{-1};  // a descriptor keeping the inode alive, or -1
};

class Inodes {
 public:
  // The mount's root: the host's node 1, always pinned, never forgotten.
  void SetRoot(long fd, const struct lkl_stat &st);
  Inode *Get(fuse_ino_t id);
  fuse_ino_t Id(Inode *inode) const;
  // The inode fd (any descriptor of it) is, now known to the host once
  // more, and its attributes in *st. Takes fd. A negative errno if fd
  // cannot be looked at.
  long Remember(long fd, Inode **inode, struct lkl_stat *st);
  // Before name in dirfd goes (unlinked, or replaced by a rename): if the
  // host knows its inode, the inode is pinned until the host forgets it.
  void PinIfKnown(long dirfd, const char *name);
  // The host dropped n references; the last one lets go of the inode.
  void Forget(fuse_ino_t id, uint64_t n);
  // Lets go of every inode (the mount is over).
  void Clear();
  // A descriptor of inode opened with flags (O_PATH, O_RDONLY, ...).
  long Open(Inode *inode, int flags);

 private:
  std::mutex lock_;
  Inode root_;
  std::map<std::pair<uint64_t, uint64_t>, Inode *> known_;  // (dev, ino)
};

// A descriptor of an inode for the length of one request: its pin when
// that will do (O_PATH), else one opened for the request and closed after.
class InodeFd {
 public:
  InodeFd(Inodes *inodes, Inode *inode, int flags);
  ~InodeFd();
  InodeFd(const InodeFd &) = delete;
  InodeFd &operator=(const InodeFd &) = delete;
  // The descriptor, or a negative errno.
  long get() const { return fd_; }

 private:
  long fd_;
  bool owned_;
};

}  // namespace lklfs
