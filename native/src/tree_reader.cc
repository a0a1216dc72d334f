// SPDX-License-Identifier: GPL-2.0
#include "tree_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "copy.h"

namespace lklfs {
namespace {

// Regular files up to this size (and without holes) are read whole here;
// bigger or sparse ones are copied by the kernel side from their open
// descriptor, in pieces, holes kept (copy.cc).
constexpr off_t kSmallFile = 4 << 20;
// What may wait in the queue: data and names, entries, open files.
constexpr size_t kQueueBytes = 8 << 20;
constexpr size_t kQueueEntries = 8192;
constexpr int kQueueFds = 64;
// What an entry costs in the queue besides its data.
constexpr size_t kEntryBytes = sizeof(TreeEntry);

long Errno(long ret) { return ret < 0 ? -errno : ret; }

long FdXattrs(int fd, Xattrs *out) {
  return CollectXattrs([&](char *buf, size_t len) { return Errno(flistxattr(fd, buf, len)); },
                       [&](const char *name, char *buf, size_t len) { return Errno(fgetxattr(fd, name, buf, len)); },
                       out);
}

size_t Cost(const TreeEntry &e) {
  size_t n = kEntryBytes + e.name.size() + e.target.size() + (e.data ? e.st.st_size : 0);
  for (auto &x : e.xattrs) n += x.first.size() + x.second.size();
  return n;
}

}  // namespace

TreeReader::TreeReader(std::vector<TreeRoot> roots, bool xattrs)
    : roots_(std::move(roots)), xattrs_(xattrs), thread_([this] { Run(); }) {}

TreeReader::~TreeReader() {
  {
    std::lock_guard<std::mutex> hold(lock_);
    stop_ = true;
  }
  moved_.notify_all();
  thread_.join();
  for (auto &e : queue_)
    if (e.fd >= 0) close(e.fd);
}

TreeEntry *TreeReader::Front() {
  std::unique_lock<std::mutex> hold(lock_);
  moved_.wait(hold, [this] { return done_ || !queue_.empty(); });
  return queue_.empty() ? nullptr : &queue_.front();
}

void TreeReader::Pop() {
  std::lock_guard<std::mutex> hold(lock_);
  TreeEntry &e = queue_.front();
  bytes_ -= e.cost;
  if (e.fd >= 0) {
    close(e.fd);
    fds_--;
  }
  queue_.pop_front();
  moved_.notify_all();
}

// Queues e once there is room: false when the walk is to stop.
bool TreeReader::Push(TreeEntry e) {
  size_t cost = e.cost = Cost(e);
  std::unique_lock<std::mutex> hold(lock_);
  moved_.wait(hold, [&] {
    return stop_ || Cancelled() || queue_.empty() ||
           (bytes_ + cost <= kQueueBytes && queue_.size() < kQueueEntries && (e.fd < 0 || fds_ < kQueueFds));
  });
  if (stop_ || Cancelled()) {
    if (e.fd >= 0) close(e.fd);
    return false;
  }
  bytes_ += cost;
  if (e.fd >= 0) fds_++;
  queue_.push_back(std::move(e));
  moved_.notify_all();
  return true;
}

// The walk ends here: the kernel side fails the copy when it gets there.
bool TreeReader::Fail(long err, const char *syscall) {
  TreeEntry e(TreeEntry::Failed);
  e.err = err;
  e.syscall = syscall;
  e.host = host_;
  Push(std::move(e));
  return false;
}

void TreeReader::Run() {
  for (auto &r : roots_) {
    struct stat st;
    host_ = r.host;
    kernel_ = r.kernel;
    if (lstat(r.host.c_str(), &st) < 0) {
      Fail(-errno, "lstat");
      break;
    }
    if (!Visit(AT_FDCWD, r.host, st, true)) break;
  }
  std::lock_guard<std::mutex> hold(lock_);
  done_ = true;
  moved_.notify_all();
}

// One entry (host_ and kernel_ are its paths), a directory with all it
// holds: false when the walk is to stop.
bool TreeReader::Visit(int dirfd, const std::string &name, const struct stat &st, bool root) {
  TreeEntry e(TreeEntry::Node);
  e.name = root ? kernel_ : name;
  e.root = root;
  e.st = st;
  switch (st.st_mode & S_IFMT) {
    case S_IFDIR:
      e.kind = TreeEntry::Dir;
      return VisitDir(dirfd, name, std::move(e));
    case S_IFREG:
      if (st.st_nlink > 1) {
        auto at = links_.find({st.st_dev, st.st_ino});
        if (at != links_.end()) {
          if (at->second.first == kernel_) return true;  // the same source given twice
          e.kind = TreeEntry::Link;
          e.target = at->second.first;
          if (--at->second.second == 0) links_.erase(at);
          return Push(std::move(e));
        }
        links_[{st.st_dev, st.st_ino}] = {kernel_, st.st_nlink - 1};
      }
      e.kind = TreeEntry::File;
      if (!ReadFile(dirfd, name, &e)) return false;
      return Push(std::move(e));
    case S_IFLNK: {
      e.kind = TreeEntry::Symlink;
      e.target.resize(st.st_size + 1);
      ssize_t n = readlinkat(dirfd, name.c_str(), e.target.data(), e.target.size());
      if (n < 0) return Fail(-errno, "readlink");
      e.target.resize(n);
      break;
    }
    default:
      break;
  }
  // No descriptor for these: a symlink or a device node is not opened.
  if (xattrs_) {
    long ret = ReadHostXattrs(host_, &e.xattrs);
    if (ret < 0) return Fail(ret, "llistxattr");
  }
  return Push(std::move(e));
}

bool TreeReader::VisitDir(int dirfd, const std::string &name, TreeEntry e) {
  int fd = openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Fail(-errno, "scandir");
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return Fail(-errno, "scandir");
  }
  long ret = xattrs_ ? FdXattrs(fd, &e.xattrs) : 0;
  if (ret < 0) {
    closedir(d);
    return Fail(ret, "llistxattr");
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent *de = readdir(d)) {
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) names.emplace_back(de->d_name);
  }
  if (errno) {
    closedir(d);
    return Fail(-errno, "scandir");
  }
  // In the order of the names' bytes: the same tree makes the same image.
  std::sort(names.begin(), names.end());
  bool going = Push(std::move(e));
  size_t host_len = host_.size(), kernel_len = kernel_.size();
  for (const std::string &child : names) {
    if (!going) break;
    host_.append(host_.back() == '/' ? "" : "/").append(child);
    kernel_.append(kernel_.back() == '/' ? "" : "/").append(child);
    struct stat st;
    going = fstatat(fd, child.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ? Visit(fd, child, st, false) : Fail(-errno, "lstat");
    host_.resize(host_len);
    kernel_.resize(kernel_len);
  }
  closedir(d);
  return going && Push(TreeEntry(TreeEntry::Leave));
}

// A small file's data into e, or its descriptor kept open.
bool TreeReader::ReadFile(int dirfd, const std::string &name, TreeEntry *e) {
  int fd = openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Fail(-errno, "open");
  long ret = xattrs_ ? FdXattrs(fd, &e->xattrs) : 0;
  if (ret < 0) {
    close(fd);
    return Fail(ret, "llistxattr");
  }
  off_t size = e->st.st_size;
  bool sparse = e->st.st_blocks * 512 < size;
  if (size > kSmallFile || sparse) {
    e->fd = fd;
    e->host = host_;
    return true;
  }
  e->data.reset(new char[size]);
  for (off_t got = 0; got < size;) {
    ssize_t n = pread(fd, e->data.get() + got, size - got, got);
    if (n <= 0) {
      ret = n < 0 ? -errno : -EIO;  // EIO: the file shrank meanwhile
      close(fd);
      return Fail(ret, "read");
    }
    got += n;
  }
  close(fd);
  return true;
}

}  // namespace lklfs
