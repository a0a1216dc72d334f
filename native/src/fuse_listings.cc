// SPDX-License-Identifier: GPL-2.0
#include "fuse_listings.h"

namespace lklfs {
namespace {

// Listings kept open at once: those of directories read side by side (a
// tree walk has one per level it is in). Each is a descriptor and 64 KiB.
constexpr size_t kKept = 16;

}  // namespace

Listing::~Listing() { lkl_sys_close(fd); }

long Listings::Get(Inodes *inodes, Inode *inode, std::shared_ptr<Listing> *listing) {
  Key key{inode->dev, inode->ino};
  {
    std::lock_guard<std::mutex> hold(lock_);
    for (auto at = open_.begin(); at != open_.end(); ++at) {
      if (at->first != key) continue;
      open_.splice(open_.begin(), open_, at);
      *listing = at->second;
      return 0;
    }
  }
  long fd = inodes->Open(inode, LKL_O_RDONLY | LKL_O_DIRECTORY);
  if (fd < 0) return fd;
  auto made = std::make_shared<Listing>(fd);
  std::shared_ptr<Listing> evicted;  // closed once the lock is let go
  {
    std::lock_guard<std::mutex> hold(lock_);
    open_.emplace_front(key, made);
    if (open_.size() > kKept) {
      evicted = std::move(open_.back().second);
      open_.pop_back();
    }
  }
  *listing = std::move(made);
  return 0;
}

void Listings::Ended(Inode *inode) {
  Key key{inode->dev, inode->ino};
  std::shared_ptr<Listing> ended;
  std::lock_guard<std::mutex> hold(lock_);
  for (auto at = open_.begin(); at != open_.end(); ++at) {
    if (at->first != key) continue;
    ended = std::move(at->second);
    open_.erase(at);
    return;
  }
}

void Listings::Clear() {
  std::list<std::pair<Key, std::shared_ptr<Listing>>> closing;
  std::lock_guard<std::mutex> hold(lock_);
  closing.swap(open_);
}

}  // namespace lklfs
