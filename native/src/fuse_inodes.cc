// SPDX-License-Identifier: GPL-2.0
#include "fuse_inodes.h"

namespace lklfs {

void Inodes::SetRoot(long fd, const struct lkl_stat &st) {
  root_.fd = fd;
  root_.dev = st.st_dev;
  root_.ino = st.st_ino;
}

Inode *Inodes::Get(fuse_ino_t id) {
  return id == FUSE_ROOT_ID ? &root_ : reinterpret_cast<Inode *>(static_cast<uintptr_t>(id));
}

fuse_ino_t Inodes::Id(Inode *inode) const {
  return inode == &root_ ? FUSE_ROOT_ID : static_cast<fuse_ino_t>(reinterpret_cast<uintptr_t>(inode));
}

Inode *Inodes::Remember(long fd, const struct lkl_stat &st) {
  std::pair<uint64_t, uint64_t> key{st.st_dev, st.st_ino};
  Inode *inode;
  bool known;
  {
    std::lock_guard<std::mutex> hold(lock_);
    if (key.first == root_.dev && key.second == root_.ino) {
      inode = &root_;
      known = true;
    } else {
      auto at = known_.find(key);
      known = at != known_.end();
      inode = known ? at->second : (known_[key] = new Inode{fd, key.first, key.second});
    }
    inode->lookups++;
  }
  if (known) lkl_sys_close(fd);
  return inode;
}

void Inodes::Forget(fuse_ino_t id, uint64_t n) {
  Inode *inode = Get(id);
  {
    std::lock_guard<std::mutex> hold(lock_);
    if (inode == &root_ || (inode->lookups -= n) > 0) return;
    known_.erase({inode->dev, inode->ino});
  }
  lkl_sys_close(inode->fd);
  delete inode;
}

void Inodes::Clear() {
  std::lock_guard<std::mutex> hold(lock_);
  for (auto &k : known_) {
    lkl_sys_close(k.second->fd);
    delete k.second;
  }
  known_.clear();
  if (root_.fd >= 0) lkl_sys_close(root_.fd);
  root_.fd = -1;
}

}  // namespace lklfs
