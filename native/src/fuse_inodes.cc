// SPDX-License-Identifier: GPL-2.0
#include "fuse_inodes.h"

#include <fcntl.h>

#include <cstring>

namespace lklfs {
namespace {

// struct file_handle is the same for the host's C library and the kernel
// (lkl.h only declares it).
struct lkl_file_handle *KernelHandle(void *handle) { return reinterpret_cast<struct lkl_file_handle *>(handle); }

// The inode's magic link: opens the inode itself, whatever its names now.
std::string MagicLink(long fd) { return "/proc/self/fd/" + std::to_string(fd); }

void Unpin(Inode *inode) {
  long pin = inode->pin.exchange(-1);
  if (pin >= 0) lkl_sys_close(pin);
}

}  // namespace

void Inodes::SetRoot(long fd, const struct lkl_stat &st) {
  root_.pin = fd;
  root_.dev = st.st_dev;
  root_.ino = st.st_ino;
}

Inode *Inodes::Get(fuse_ino_t id) {
  return id == FUSE_ROOT_ID ? &root_ : reinterpret_cast<Inode *>(static_cast<uintptr_t>(id));
}

fuse_ino_t Inodes::Id(Inode *inode) const {
  return inode == &root_ ? FUSE_ROOT_ID : static_cast<fuse_ino_t>(reinterpret_cast<uintptr_t>(inode));
}

long Inodes::Remember(long fd, Inode **inode, struct lkl_stat *st) {
  long ret = lkl_sys_newfstatat(fd, "", st, LKL_AT_EMPTY_PATH | LKL_AT_SYMLINK_NOFOLLOW);
  std::string handle;
  if (ret == 0) {
    struct file_handle head = {};
    char buf[sizeof(head) + MAX_HANDLE_SZ];
    head.handle_bytes = MAX_HANDLE_SZ;
    memcpy(buf, &head, sizeof(head));
    int mount_id;
    // Without one (EOPNOTSUPP: no file handles on this filesystem), the
    // inode is pinned by fd.
    if (lkl_sys_name_to_handle_at(fd, "", KernelHandle(buf), &mount_id, LKL_AT_EMPTY_PATH) == 0) {
      memcpy(&head, buf, sizeof(head));
      handle.assign(buf, sizeof(head) + head.handle_bytes);
    }
  }
  if (ret < 0) {
    lkl_sys_close(fd);
    return ret;
  }
  std::pair<uint64_t, uint64_t> key{st->st_dev, st->st_ino};
  bool keep_fd = false;
  {
    std::lock_guard<std::mutex> hold(lock_);
    Inode *found = &root_;
    if (key != std::make_pair(root_.dev, root_.ino)) {
      auto at = known_.find(key);
      if (at != known_.end()) {
        found = at->second;
      } else {
        found = new Inode{key.first, key.second, 0, std::move(handle)};
        if (found->handle.empty()) {
          found->pin = fd;
          keep_fd = true;
        }
        known_[key] = found;
      }
    }
    found->lookups++;
    *inode = found;
  }
  if (!keep_fd) lkl_sys_close(fd);
  return 0;
}

void Inodes::PinIfKnown(long dirfd, const char *name) {
  long fd = lkl_sys_openat(dirfd, name, LKL_O_PATH | LKL_O_NOFOLLOW | LKL_O_CLOEXEC, 0);
  if (fd < 0) return;
  struct lkl_stat st;
  if (lkl_sys_newfstatat(fd, "", &st, LKL_AT_EMPTY_PATH | LKL_AT_SYMLINK_NOFOLLOW) == 0) {
    std::lock_guard<std::mutex> hold(lock_);
    auto at = known_.find({st.st_dev, st.st_ino});
    long none = -1;
    if (at != known_.end() && at->second->pin.compare_exchange_strong(none, fd)) return;
  }
  lkl_sys_close(fd);
}

void Inodes::Forget(fuse_ino_t id, uint64_t n) {
  Inode *inode = Get(id);
  {
    std::lock_guard<std::mutex> hold(lock_);
    if (inode == &root_ || (inode->lookups -= n) > 0) return;
    known_.erase({inode->dev, inode->ino});
  }
  Unpin(inode);
  delete inode;
}

void Inodes::Clear() {
  std::lock_guard<std::mutex> hold(lock_);
  for (auto &k : known_) {
    Unpin(k.second);
    delete k.second;
  }
  known_.clear();
  Unpin(&root_);
}

long Inodes::Open(Inode *inode, int flags) {
  flags |= LKL_O_CLOEXEC;
  long pin = inode->pin;
  if (pin >= 0) return lkl_sys_openat(LKL_AT_FDCWD, MagicLink(pin).c_str(), flags, 0);
  // (The kernel only reads the handle.)
  return lkl_sys_open_by_handle_at(root_.pin, KernelHandle(const_cast<char *>(inode->handle.data())), flags);
}

InodeFd::InodeFd(Inodes *inodes, Inode *inode, int flags) {
  long pin = inode->pin;
  owned_ = !(pin >= 0 && (flags & LKL_O_PATH));
  fd_ = owned_ ? inodes->Open(inode, flags) : pin;
}

InodeFd::~InodeFd() {
  if (owned_ && fd_ >= 0) lkl_sys_close(fd_);
}

}  // namespace lklfs
