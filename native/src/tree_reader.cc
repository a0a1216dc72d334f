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

// The data ring, and the biggest piece of data in it: a file up to that
// size without holes is one entry, others one per piece of a data extent.
constexpr size_t kRing = 4 << 20;
constexpr size_t kPiece = 1 << 20;
// Entries waiting: bounds the memory of names, targets and attributes.
constexpr size_t kQueueEntries = 8192;

long Errno(long ret) { return ret < 0 ? -errno : ret; }

long FdXattrs(int fd, Xattrs *out) {
  return CollectXattrs([&](char *buf, size_t len) { return Errno(flistxattr(fd, buf, len)); },
                       [&](const char *name, char *buf, size_t len) { return Errno(fgetxattr(fd, name, buf, len)); },
                       out);
}

}  // namespace

TreeReader::TreeReader(std::vector<TreeRoot> roots, bool xattrs)
    : roots_(std::move(roots)), xattrs_(xattrs), ring_(new char[kRing]), thread_([this] { Run(); }) {}

TreeReader::~TreeReader() {
  {
    std::lock_guard<std::mutex> hold(lock_);
    stop_ = true;
  }
  moved_.notify_all();
  thread_.join();
}

TreeEntry *TreeReader::Front() {
  std::unique_lock<std::mutex> hold(lock_);
  moved_.wait(hold, [this] { return done_ || !queue_.empty(); });
  return queue_.empty() ? nullptr : &queue_.front();
}

void TreeReader::Pop() {
  std::lock_guard<std::mutex> hold(lock_);
  if (queue_.front().ring_end) given_ = queue_.front().ring_end;
  queue_.pop_front();
  moved_.notify_all();
}

// length contiguous bytes of the ring, once given back; *end is where they
// end, for Pop. nullptr when the walk is to stop.
char *TreeReader::Take(size_t length, uint64_t *end) {
  std::unique_lock<std::mutex> hold(lock_);
  size_t at = taken_ % kRing;
  size_t gap = at + length > kRing ? kRing - at : 0;  // the ring's end is too short: start over
  moved_.wait(hold, [&] { return stop_ || Cancelled() || taken_ + gap + length - given_ <= kRing; });
  if (stop_ || Cancelled()) return nullptr;
  taken_ += gap + length;
  *end = taken_;
  return ring_.get() + (gap ? 0 : at);
}

// Queues e once there is room: false when the walk is to stop.
bool TreeReader::Push(TreeEntry e) {
  std::unique_lock<std::mutex> hold(lock_);
  moved_.wait(hold, [&] { return stop_ || Cancelled() || queue_.size() < kQueueEntries; });
  if (stop_ || Cancelled()) return false;
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
      return VisitFile(dirfd, name, std::move(e));
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
  for (;;) {
    errno = 0;  // the end and a failure differ only by errno
    struct dirent *de = readdir(d);
    if (!de) break;
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

// A regular file: one entry with its data, or for a big or sparse one
// (holes are kept: SEEK_DATA/SEEK_HOLE) the entry, then its pieces.
bool TreeReader::VisitFile(int dirfd, const std::string &name, TreeEntry e) {
  int fd = openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Fail(-errno, "open");
  long ret = xattrs_ ? FdXattrs(fd, &e.xattrs) : 0;
  int64_t size = e.st.st_size;
  bool pieces = size > static_cast<int64_t>(kPiece) || e.st.st_blocks * 512 < size;
  e.pieces = pieces;
  bool going = ret >= 0 || Fail(ret, "llistxattr");
  if (going && !pieces) going = ReadData(fd, 0, size, &e) && Push(std::move(e));
  if (going && pieces) {
    going = Push(std::move(e));
    for (int64_t off = 0; going && off < size;) {
      off_t data = lseek(fd, off, SEEK_DATA);
      if (data < 0 && errno == ENXIO) break;  // only a hole is left
      off_t hole = data < 0 ? size : lseek(fd, data, SEEK_HOLE);
      if (data < 0) data = off;  // no SEEK_DATA here: all is data
      if (hole < 0 || hole > size) hole = size;
      for (off = data; going && off < hole; off += kPiece) {
        TreeEntry piece(TreeEntry::Piece);
        going = ReadData(fd, off, std::min<int64_t>(kPiece, hole - off), &piece) && Push(std::move(piece));
      }
      off = std::min<int64_t>(off, hole);
    }
    TreeEntry end(TreeEntry::FileEnd);
    end.offset = size;
    going = going && Push(std::move(end));
  }
  close(fd);
  return going;
}

// length bytes at offset into the ring, for e.
bool TreeReader::ReadData(int fd, int64_t offset, size_t length, TreeEntry *e) {
  char *buf = length ? Take(length, &e->ring_end) : nullptr;
  if (length && !buf) return false;
  for (size_t got = 0; got < length;) {
    ssize_t n = pread(fd, buf + got, length - got, offset + got);
    if (n <= 0) return Fail(n < 0 ? -errno : -EIO, "read");  // EIO: the file shrank meanwhile
    got += n;
  }
  e->data = buf;
  e->length = length;
  e->offset = offset;
  return true;
}

}  // namespace lklfs
