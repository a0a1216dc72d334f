// SPDX-License-Identifier: GPL-2.0
#include "fuse_inodes.h"

#include <string>

namespace lklfs {

void OfferDataFd(Inode *inode, long fd) {
  long none = -1;
  if (!inode->data.compare_exchange_strong(none, fd)) lkl_sys_close(fd);
}

long DataFd(Inode *inode) {
  long fd = inode->data.load();
  if (fd >= 0) return fd;
  // The inode's magic link opens the inode itself.
  std::string path = "/proc/self/fd/" + std::to_string(inode->fd);
  fd = lkl_sys_openat(LKL_AT_FDCWD, path.c_str(), LKL_O_RDWR | LKL_O_CLOEXEC, 0);
  if (fd == -LKL_EROFS || fd == -LKL_EPERM || fd == -LKL_EACCES || fd == -LKL_ETXTBSY)
    fd = lkl_sys_openat(LKL_AT_FDCWD, path.c_str(), LKL_O_RDONLY | LKL_O_CLOEXEC, 0);
  if (fd < 0) return fd;
  OfferDataFd(inode, fd);
  return inode->data.load();
}

// Closes what the inode holds in the kernel.
static void Release(Inode *inode) {
  lkl_sys_close(inode->fd);
  if (inode->data >= 0) lkl_sys_close(inode->data);
}

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
  Release(inode);
  delete inode;
}

void Inodes::Clear() {
  std::lock_guard<std::mutex> hold(lock_);
  for (auto &k : known_) {
    Release(k.second);
    delete k.second;
  }
  known_.clear();
  if (root_.fd >= 0) Release(&root_);
  root_.fd = -1;
}

}  // namespace lklfs
