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
//
// The inodes used last keep a descriptor open (at most kCachedFds): a file
// being copied in or read out takes several requests in a row, and every
// open and close is a call into the kernel.
#pragma once

#include "fuse_lib.h"
#include "kernel_api.h"

#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace lklfs {

// What a request does with an inode's descriptor.
enum class Access {
  kAny,    // names it to *at() calls, stats it: O_PATH will do
  kRead,   // reads it, or its extended attributes by descriptor
  kWrite,  // writes it
};

struct Inode {
  uint64_t dev, ino;
  unsigned type;              // its S_IFMT bits
  std::string handle;         // a struct file_handle, if the filesystem gives one
  std::atomic<long> pin{-1};  // a descriptor keeping the inode alive, or -1
  // security.capability: a generation (bumped when it is set or removed)
  // times two, plus one while it is known to be absent. The host asks for
  // it before every write.
  std::atomic<uint32_t> caps{0};
  // Guarded by Inodes::lock_:
  uint64_t lookups = 0;     // the host's references
  unsigned users = 0;       // requests working on it now
  bool forgotten = false;   // the host let go while a request still ran
  long fd = -1;             // the cached descriptor, or -1
  bool fd_real = false;     // not O_PATH: reads, and takes f*xattr() calls
  bool fd_writable = false;
  std::list<Inode *>::iterator used{};  // its place in Inodes::cached_
};

class Inodes {
 public:
  // The mount's root: the host's node 1, open (fd, O_RDONLY) for as long as
  // the mount lasts, never forgotten.
  void SetRoot(long fd, const struct lkl_stat &st);
  Inode *Get(fuse_ino_t id);
  fuse_ino_t Id(Inode *inode) const;
  // name in directory dirfd, now known to the host once more, and its
  // attributes in *st. A negative errno if it cannot be looked at.
  long Lookup(long dirfd, const char *name, Inode **inode, struct lkl_stat *st);
  // As Lookup(), for the file just made and opened read-write as fd
  // (taken: it becomes the inode's cached descriptor).
  long Made(long fd, Inode **inode, struct lkl_stat *st);
  // Before name in dirfd goes (unlinked, or replaced by a rename): if the
  // host knows its inode, the inode is pinned until the host forgets it.
  void PinIfKnown(long dirfd, const char *name);
  // The host dropped n references; the last one lets go of the inode.
  void Forget(fuse_ino_t id, uint64_t n);
  // Lets go of every inode (the mount is over).
  void Clear();
  // A new descriptor of inode opened with flags (for a handle of its own).
  long Open(Inode *inode, int flags);

 private:
  friend class InodeFd;
  // Under lock_: the inode st is, if the host knows it (one reference more).
  Inode *Known(const struct lkl_stat &st);
  // The handle of name in dirfd (flags: name_to_handle_at's) into
  // *handle; left empty if the filesystem has none.
  long Handle(long dirfd, const char *name, int flags, std::string *handle);
  // Adds the inode st is to those the host knows (or one reference more
  // if another request just did), with what finds it again: its handle,
  // or pin; fd (>= 0) read-write becomes its cached descriptor. Takes pin
  // and fd.
  void Insert(const struct lkl_stat &st, std::string handle, long pin, long fd, Inode **inode);
  // A descriptor of inode for access; *owned if the caller must close it
  // (the cached one would not do and could not be replaced). Holds the
  // inode until Release().
  long Acquire(Inode *inode, Access access, bool *owned, bool *real);
  void Release(Inode *inode, long fd, bool owned);
  // Opens inode for access: files read-write when they can be.
  long OpenFor(Inode *inode, Access access, bool *real, bool *writable);
  // Under lock_: closes the descriptors of inodes nobody uses beyond
  // kCachedFds, and frees a forgotten inode, into *closing (closed by
  // the caller, outside the lock).
  void Trim(std::vector<long> *closing);
  void Drop(Inode *inode, std::vector<long> *closing);
  static void CloseAll(const std::vector<long> &fds);

  std::mutex lock_;
  Inode root_;
  std::map<std::pair<uint64_t, uint64_t>, Inode *> known_;  // (dev, ino)
  std::list<Inode *> cached_;  // inodes with a descriptor, the latest used first
  std::atomic<bool> no_handles_{false};  // the filesystem has none (EOPNOTSUPP)
  std::atomic<bool> read_only_{false};   // opening for writing says EROFS
};

// An inode's descriptor for the length of one request (see Acquire).
class InodeFd {
 public:
  InodeFd(Inodes *inodes, Inode *inode, Access access);
  ~InodeFd();
  InodeFd(const InodeFd &) = delete;
  InodeFd &operator=(const InodeFd &) = delete;
  // The descriptor, or a negative errno.
  long get() const { return fd_; }
  // Not O_PATH: f*xattr() calls work on it.
  bool real() const { return real_; }

 private:
  Inodes *inodes_;
  Inode *inode_;
  long fd_;
  bool owned_ = false, real_ = false;
};

}  // namespace lklfs
