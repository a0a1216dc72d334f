// SPDX-License-Identifier: GPL-2.0
#include "fuse_inodes.h"

#include <fcntl.h>

#include <cstring>

namespace lklfs {
namespace {

// Descriptors kept open for the inodes used last. A kernel file and the
// inode it holds in memory are a few hundred bytes each: 512 of them is
// little even in the smallest kernel, and covers the files a tool works
// on at once (a copy's writes come right after the file is made).
constexpr size_t kCachedFds = 512;

// struct file_handle is the same for the host's C library and the kernel
// (lkl.h only declares it).
struct lkl_file_handle *KernelHandle(void *handle) { return reinterpret_cast<struct lkl_file_handle *>(handle); }

// The inode's magic link: opens the inode itself, whatever its names now.
std::string MagicLink(long fd) { return "/proc/self/fd/" + std::to_string(fd); }

bool Suits(const Inode &inode, Access access) {
  switch (access) {
    case Access::kAny:
      return true;
    case Access::kRead:
      return inode.fd_real;
    case Access::kWrite:
      return inode.fd_writable;
  }
  return false;
}

}  // namespace

void Inodes::SetRoot(long fd, const struct lkl_stat &st) {
  root_.pin = fd;
  root_.fd = fd;
  root_.fd_real = true;
  root_.dev = st.st_dev;
  root_.ino = st.st_ino;
  root_.type = st.st_mode & LKL_S_IFMT;
}

Inode *Inodes::Get(fuse_ino_t id) {
  return id == FUSE_ROOT_ID ? &root_ : reinterpret_cast<Inode *>(static_cast<uintptr_t>(id));
}

fuse_ino_t Inodes::Id(Inode *inode) const {
  return inode == &root_ ? FUSE_ROOT_ID : static_cast<fuse_ino_t>(reinterpret_cast<uintptr_t>(inode));
}

Inode *Inodes::Known(const struct lkl_stat &st) {
  std::pair<uint64_t, uint64_t> key{st.st_dev, st.st_ino};
  Inode *found = key == std::make_pair(root_.dev, root_.ino) ? &root_ : nullptr;
  if (!found) {
    auto at = known_.find(key);
    if (at != known_.end()) found = at->second;
  }
  if (found) found->lookups++;
  return found;
}

long Inodes::Handle(long dirfd, const char *name, int flags, std::string *handle) {
  if (no_handles_) return 0;
  struct file_handle head = {};
  char buf[sizeof(head) + MAX_HANDLE_SZ];
  head.handle_bytes = MAX_HANDLE_SZ;
  memcpy(buf, &head, sizeof(head));
  int mount_id;
  long ret = lkl_sys_name_to_handle_at(dirfd, name, KernelHandle(buf), &mount_id, flags);
  if (ret == -LKL_EOPNOTSUPP) {
    no_handles_ = true;
    return 0;
  }
  if (ret < 0) return ret;
  memcpy(&head, buf, sizeof(head));
  handle->assign(buf, sizeof(head) + head.handle_bytes);
  return 0;
}

void Inodes::Insert(const struct lkl_stat &st, std::string handle, long pin, long fd, Inode **inode) {
  {
    std::lock_guard<std::mutex> hold(lock_);
    // Another request may have brought it in meanwhile.
    if (!(*inode = Known(st))) {
      auto *made = new Inode{st.st_dev, st.st_ino, st.st_mode & LKL_S_IFMT, std::move(handle)};
      made->pin = pin;
      made->lookups = 1;
      if (fd >= 0) {
        made->fd = fd;
        made->fd_real = made->fd_writable = true;
        cached_.push_front(made);
        made->used = cached_.begin();
      }
      known_[{st.st_dev, st.st_ino}] = made;
      *inode = made;
      return;
    }
  }
  CloseAll({pin, fd});
}

long Inodes::Lookup(long dirfd, const char *name, Inode **inode, struct lkl_stat *st) {
  long ret = lkl_sys_newfstatat(dirfd, name, st, LKL_AT_SYMLINK_NOFOLLOW);
  if (ret < 0) return ret;
  {
    std::lock_guard<std::mutex> hold(lock_);
    if ((*inode = Known(*st))) return 0;
  }
  // New to the host: how to find it again. (The host holds the directory
  // locked against renames and unlinks while it looks a name up, so the
  // name still leads to the inode just looked at.)
  std::string handle;
  long pin = -1;
  ret = Handle(dirfd, name, 0, &handle);
  if (ret < 0) return ret;
  if (handle.empty()) {
    pin = lkl_sys_openat(dirfd, name, LKL_O_PATH | LKL_O_NOFOLLOW | LKL_O_CLOEXEC, 0);
    if (pin < 0) return pin;
  }
  Insert(*st, std::move(handle), pin, -1, inode);
  return 0;
}

long Inodes::Made(long fd, Inode **inode, struct lkl_stat *st) {
  std::string handle;
  long ret = lkl_sys_newfstatat(fd, "", st, LKL_AT_EMPTY_PATH);
  if (ret == 0) ret = Handle(fd, "", LKL_AT_EMPTY_PATH, &handle);
  if (ret < 0) {
    lkl_sys_close(fd);
    return ret;
  }
  // Without a handle, the descriptor is what finds the inode again.
  if (handle.empty())
    Insert(*st, std::move(handle), fd, -1, inode);
  else
    Insert(*st, std::move(handle), -1, fd, inode);
  return 0;
}

void Inodes::PinIfKnown(long dirfd, const char *name) {
  struct lkl_stat st;
  if (lkl_sys_newfstatat(dirfd, name, &st, LKL_AT_SYMLINK_NOFOLLOW) < 0) return;
  auto find = [&]() -> Inode * {
    auto at = known_.find({st.st_dev, st.st_ino});
    return at == known_.end() || at->second->pin >= 0 ? nullptr : at->second;
  };
  {
    std::lock_guard<std::mutex> hold(lock_);
    if (!find()) return;
  }
  long fd = lkl_sys_openat(dirfd, name, LKL_O_PATH | LKL_O_NOFOLLOW | LKL_O_CLOEXEC, 0);
  if (fd < 0) return;
  {
    std::lock_guard<std::mutex> hold(lock_);
    long none = -1;
    Inode *inode = find();
    if (inode && inode->pin.compare_exchange_strong(none, fd)) return;
  }
  lkl_sys_close(fd);
}

void Inodes::Forget(fuse_ino_t id, uint64_t n) {
  Inode *inode = Get(id);
  std::vector<long> closing;
  {
    std::lock_guard<std::mutex> hold(lock_);
    if (inode == &root_ || (inode->lookups -= n) > 0) return;
    known_.erase({inode->dev, inode->ino});
    // A request still working on it lets go of it when done.
    if (inode->users)
      inode->forgotten = true;
    else
      Drop(inode, &closing);
  }
  CloseAll(closing);
}

void Inodes::Drop(Inode *inode, std::vector<long> *closing) {
  if (inode->fd >= 0) {
    closing->push_back(inode->fd);
    cached_.erase(inode->used);
  }
  long pin = inode->pin.exchange(-1);
  if (pin >= 0) closing->push_back(pin);
  delete inode;
}

void Inodes::Clear() {
  std::vector<long> closing;
  {
    std::lock_guard<std::mutex> hold(lock_);
    for (auto &k : known_) Drop(k.second, &closing);
    known_.clear();
    // (The root's descriptor is its pin.)
    long pin = root_.pin.exchange(-1);
    if (pin >= 0) closing.push_back(pin);
    root_.fd = -1;
  }
  CloseAll(closing);
}

long Inodes::Open(Inode *inode, int flags) {
  flags |= LKL_O_CLOEXEC;
  long pin = inode->pin;
  if (pin >= 0) return lkl_sys_openat(LKL_AT_FDCWD, MagicLink(pin).c_str(), flags, 0);
  // (The kernel only reads the handle.)
  return lkl_sys_open_by_handle_at(root_.pin, KernelHandle(const_cast<char *>(inode->handle.data())), flags);
}

long Inodes::OpenFor(Inode *inode, Access access, bool *real, bool *writable) {
  *real = *writable = false;
  switch (inode->type) {
    case LKL_S_IFREG:
      // Read-write whenever the filesystem allows it: the descriptor then
      // serves whatever comes next.
      if (!read_only_ || access == Access::kWrite) {
        long fd = Open(inode, LKL_O_RDWR);
        if (fd == -LKL_EROFS) read_only_ = true;
        if (fd >= 0 || access == Access::kWrite) {
          *real = *writable = fd >= 0;
          return fd;
        }
      }
      *real = true;
      return Open(inode, LKL_O_RDONLY);
    case LKL_S_IFDIR:
      if (access == Access::kWrite) return -LKL_EISDIR;
      *real = true;
      return Open(inode, LKL_O_RDONLY | LKL_O_DIRECTORY);
    default:
      // Opening a device or a FIFO would be using it.
      return Open(inode, LKL_O_PATH);
  }
}

long Inodes::Acquire(Inode *inode, Access access, bool *owned, bool *real) {
  *owned = false;
  {
    std::lock_guard<std::mutex> hold(lock_);
    inode->users++;
    if (inode->fd >= 0 && Suits(*inode, access)) {
      if (inode != &root_) cached_.splice(cached_.begin(), cached_, inode->used);
      *real = inode->fd_real;
      return inode->fd;
    }
    // A pin is O_PATH: all that a symlink or a device would give anyway.
    long pin = inode->pin;
    bool openable = inode->type == LKL_S_IFREG || inode->type == LKL_S_IFDIR;
    if (pin >= 0 && (access == Access::kAny || !openable)) {
      *real = false;
      return pin;
    }
  }
  bool writable;
  long fd = OpenFor(inode, access, real, &writable);
  if (fd < 0) return fd;
  std::vector<long> closing;
  {
    std::lock_guard<std::mutex> hold(lock_);
    // Cached unless a request still uses the descriptor it would replace.
    bool better = inode->fd < 0 || (inode->users == 1 && (writable > inode->fd_writable || *real > inode->fd_real));
    if (inode == &root_ || !better) {
      *owned = true;
      return fd;
    }
    if (inode->fd >= 0) {
      closing.push_back(inode->fd);
      cached_.splice(cached_.begin(), cached_, inode->used);
    } else {
      cached_.push_front(inode);
      inode->used = cached_.begin();
    }
    inode->fd = fd;
    inode->fd_real = *real;
    inode->fd_writable = writable;
  }
  CloseAll(closing);
  return fd;
}

void Inodes::Release(Inode *inode, long fd, bool owned) {
  std::vector<long> closing;
  if (owned && fd >= 0) closing.push_back(fd);
  {
    std::lock_guard<std::mutex> hold(lock_);
    if (--inode->users == 0 && inode->forgotten) Drop(inode, &closing);
    Trim(&closing);
  }
  CloseAll(closing);
}

void Inodes::Trim(std::vector<long> *closing) {
  auto at = cached_.end();
  while (cached_.size() > kCachedFds && at != cached_.begin()) {
    Inode *inode = *--at;
    if (inode->users) continue;
    closing->push_back(inode->fd);
    inode->fd = -1;
    inode->fd_real = inode->fd_writable = false;
    at = cached_.erase(at);
  }
}

void Inodes::CloseAll(const std::vector<long> &fds) {
  for (long fd : fds)
    if (fd >= 0) lkl_sys_close(fd);
}

InodeFd::InodeFd(Inodes *inodes, Inode *inode, Access access) : inodes_(inodes), inode_(inode) {
  fd_ = inodes->Acquire(inode, access, &owned_, &real_);
}

InodeFd::~InodeFd() { inodes_->Release(inode_, fd_, owned_); }

}  // namespace lklfs
