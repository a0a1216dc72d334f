// SPDX-License-Identifier: GPL-2.0
// The host side of treeCopyIn (tree_in.cc): host trees walked depth first
// on a thread of their own, each entry with its metadata, extended
// attributes and, for a small file, its data, read ahead into a queue of
// bounded size while the kernel side writes what came before.
#pragma once

#include <sys/stat.h>

#include <condition_variable>
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
  // Leave: the end of the directory entered last (its metadata comes
  // after its contents). Failed: the walk stopped on a host error.
  enum Kind { Dir, File, Symlink, Link, Node, Leave, Failed } kind;
  explicit TreeEntry(Kind k) : kind(k) {}
  // In its directory; a root's is its whole kernel path.
  std::string name;
  bool root = false;
  struct stat st = {};
  // A symlink's target; a hard link's first name (a whole kernel path).
  std::string target;
  Xattrs xattrs;
  // A small file's contents (size bytes); others are copied from fd,
  // still open.
  std::unique_ptr<char[]> data;
  int fd = -1;
  // Failed: the error, the call, the host path; fd's host path too.
  long err = 0;
  const char *syscall = nullptr;
  std::string host;
  // What it holds in the queue (TreeReader's accounting).
  size_t cost = 0;
};

// A source and the kernel path it is copied as.
struct TreeRoot {
  std::string host, kernel;
};

class TreeReader {
 public:
  TreeReader(std::vector<TreeRoot> roots, bool xattrs);
  // Stops the walk and closes what the kernel side never took.
  ~TreeReader();

  // The next entry, once read; nullptr when the walk is over. Pop()
  // drops it (closing its file).
  TreeEntry *Front();
  void Pop();

 private:
  void Run();
  bool Visit(int dirfd, const std::string &name, const struct stat &st, bool root);
  bool VisitDir(int dirfd, const std::string &name, TreeEntry e);
  bool ReadFile(int dirfd, const std::string &name, TreeEntry *e);
  bool Push(TreeEntry e);
  bool Fail(long err, const char *syscall);

  std::vector<TreeRoot> roots_;
  bool xattrs_;
  // Where the walk is: host and kernel paths of the current entry.
  std::string host_, kernel_;
  // Files with several links: (dev, ino) -> first kernel path and the
  // links still to come (the entry goes when all are seen).
  std::map<std::pair<dev_t, ino_t>, std::pair<std::string, nlink_t>> links_;

  std::mutex lock_;
  std::condition_variable moved_;
  std::deque<TreeEntry> queue_;
  size_t bytes_ = 0;  // data and names waiting in queue_
  int fds_ = 0;       // open files waiting in queue_
  bool stop_ = false, done_ = false;
  std::thread thread_;
};

}  // namespace lklfs
