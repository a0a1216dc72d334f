// SPDX-License-Identifier: GPL-2.0
// The host side of treeCopyIn (tree_in.cc): host trees walked depth first
// on a thread of their own, each entry with its metadata, extended
// attributes and file data read ahead into a queue of bounded size while
// the kernel side writes what came before. The data lives in one ring of
// fixed size, taken and given back in queue order: the memory a copy
// needs does not grow with the tree or its files.
#pragma once

#include <sys/stat.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "xattrs.h"

namespace lklfs {

struct TreeEntry {
  // File: a regular file, with its data when small; a bigger or sparse
  // one is followed by its data extents (Piece, at offset) and FileEnd.
  // Leave: the end of the directory entered last (its metadata comes
  // after its contents). Failed: the walk stopped on a host error.
  enum Kind { Dir, File, Piece, FileEnd, Symlink, Link, Node, Leave, Failed } kind;
  explicit TreeEntry(Kind k) : kind(k) {}
  // In its directory; a root's is its whole kernel path.
  std::string name;
  bool root = false;
  struct stat st = {};
  // A symlink's target; a hard link's first name (a whole kernel path).
  std::string target;
  Xattrs xattrs;
  // File: whether Pieces follow. File, Piece: length bytes of data (in
  // the ring), at offset in the file.
  bool pieces = false;
  const char *data = nullptr;
  size_t length = 0;
  int64_t offset = 0;
  // Failed: the error, the call, the host path.
  long err = 0;
  const char *syscall = nullptr;
  std::string host;
  // Where its data ends in the ring (TreeReader's accounting).
  uint64_t ring_end = 0;
};

// A source and the kernel path it is copied as.
struct TreeRoot {
  std::string host, kernel;
};

class TreeReader {
 public:
  TreeReader(std::vector<TreeRoot> roots, bool xattrs);
  // Stops the walk.
  ~TreeReader();

  // The next entry, once read; nullptr when the walk is over.
  TreeEntry *Front();
  void Pop();

 private:
  void Run();
  bool Visit(int dirfd, const std::string &name, const struct stat &st, bool root);
  bool VisitDir(int dirfd, const std::string &name, TreeEntry e);
  bool VisitFile(int dirfd, const std::string &name, TreeEntry e);
  bool ReadData(int fd, int64_t offset, size_t length, TreeEntry *e);
  char *Take(size_t length, uint64_t *end);
  bool Push(TreeEntry e);
  bool Fail(long err, const char *syscall);

  std::vector<TreeRoot> roots_;
  bool xattrs_;
  // Where the walk is: host and kernel paths of the current entry.
  std::string host_, kernel_;
  // Files with several links: (dev, ino) -> first kernel path and the
  // links still to come (the entry goes when all are seen).
  std::map<std::pair<dev_t, ino_t>, std::pair<std::string, nlink_t>> links_;

  std::unique_ptr<char[]> ring_;
  // Bytes of the ring ever taken (gaps at its end included) and given back.
  uint64_t taken_ = 0, given_ = 0;
  std::mutex lock_;
  std::condition_variable moved_;
  std::deque<TreeEntry> queue_;
  bool stop_ = false, done_ = false;
  std::thread thread_;
};

}  // namespace lklfs
