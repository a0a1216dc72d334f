// SPDX-License-Identifier: GPL-2.0
// Directory listings in progress. The host opens and closes directories
// without telling us (no-opendir: two requests fewer per directory), so a
// listing belongs to the directory, not to an open handle: its descriptor
// and what getdents64 read ahead stay until the listing reaches its end,
// or until it is one of the least recently used beyond kKept.
#pragma once

#include "fuse_inodes.h"

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace lklfs {

struct Listing {
  explicit Listing(long fd) : fd(fd) {}
  ~Listing();
  Listing(const Listing &) = delete;
  Listing &operator=(const Listing &) = delete;
  std::mutex lock;  // one request reads it at a time
  long fd;          // the directory, opened for this listing
  std::vector<char> buf = std::vector<char>(64 * 1024);
  size_t at = 0, end = 0;  // the entries read, not yet passed on
  int64_t pos = 0;         // the offset (cookie) of the entry at `at`
};

class Listings {
 public:
  // The listing of directory inode, opened if there is none: a negative
  // errno if it cannot be.
  long Get(Inodes *inodes, Inode *inode, std::shared_ptr<Listing> *listing);
  // The listing of inode came to its end: closed.
  void Ended(Inode *inode);
  // Closes every listing (the mount is over).
  void Clear();

 private:
  using Key = std::pair<uint64_t, uint64_t>;  // (dev, ino): an open listing keeps its inode
  std::mutex lock_;
  std::list<std::pair<Key, std::shared_ptr<Listing>>> open_;  // the latest used first
};

}  // namespace lklfs
