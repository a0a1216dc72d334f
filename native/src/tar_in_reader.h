// SPDX-License-Identifier: GPL-2.0
// The reading side of tar2fs (tar_in.cc): a tar stream parsed on a thread
// of its own, the way GNU tar and libarchive read what they and `docker
// export` write: v7, ustar (with its name prefix), GNU (long names and
// link names, base-256 numbers, old sparse files), POSIX pax (per-entry
// and global extended headers: nanosecond times, long and non-UTF-8
// names, big ids and sizes, SCHILY.xattr.*, LIBARCHIVE.xattr.*,
// SCHILY.acl.*, GNU sparse 0.0, 0.1 and 1.0). Names, link targets and
// attribute values stay the bytes they are.
//
// Entries are queued with their data read ahead into one ring of fixed
// size (as tree_reader.cc does for host trees), so that memory stays the
// same whatever the archive's size. A bad archive ends the queue with an
// entry that says what is wrong and where (the entry, the byte offset).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tar_input.h"
#include "xattrs.h"

namespace lklfs {

struct TarItem {
  // File: a regular file, with its data when small and not sparse; any
  // other is followed by its data (Piece, at offset) and FileEnd (offset:
  // its size). Node: a device node or fifo (node_type). Failed: the
  // archive is bad, or could not be read (error says how and where).
  enum Kind { Dir, File, Piece, FileEnd, Symlink, Link, Node, Failed } kind;
  explicit TarItem(Kind k) : kind(k) {}
  // The member name as stored ("./etc/passwd", "usr/bin/", ...).
  std::string name;
  // Permission bits, set-id and sticky bits included.
  uint32_t mode = 0;
  int64_t uid = 0, gid = 0;
  int64_t mtime_ns = 0, atime_ns = 0;
  // A symlink's target, or the earlier member a hard link names.
  std::string link;
  uint32_t node_type = 0, dev_major = 0, dev_minor = 0;
  // Extended attributes in archive order, and POSIX ACLs as text.
  Xattrs xattrs;
  bool has_acl_access = false, has_acl_default = false;
  std::string acl_access, acl_default;
  // A type flag this reader does not know: the entry is a regular file.
  char unknown_type = 0;
  bool pieces = false;
  // File, Piece: length bytes of data (in the ring), for offset.
  const char *data = nullptr;
  size_t length = 0;
  int64_t offset = 0;
  std::string error;
  // Where its data ends in the ring (TarReader's accounting).
  uint64_t ring_end = 0;
};

// A name's bytes for messages: UTF-8 where it is, \xNN escapes elsewhere.
std::string ShowName(const std::string &name);

class TarReader {
 public:
  // Reads fd (see ArchiveInput) from construction on; label names it in messages.
  TarReader(int fd, bool file, std::string label);
  // Stops the reading.
  ~TarReader();

  // The next entry, once read; nullptr when there are no more.
  TarItem *Front();
  // The same, waiting at most ms: nullptr also when none came meanwhile.
  TarItem *FrontWithin(int ms);
  // Whether every entry has been taken.
  bool Ended();
  void Pop();
  // The archive ended without its two zero blocks (once Ended()).
  bool EndedWithoutMarker();

 private:
  struct Record {
    std::string key, value;
  };
  struct Sparse;
  struct Stopped {};

  void Run();
  bool NextEntry();
  void Entry(const char *block, char type, int64_t size, std::vector<Record> &local, const std::string *long_name,
             const std::string *long_link, int64_t start, int64_t at);
  void Data(TarItem e, const std::vector<std::pair<int64_t, int64_t>> &extents);
  int64_t ApplyRecord(TarItem &e, const Record &r, Sparse &sparse, int64_t at);
  Sparse OldGnuSparse(const char *block, int64_t at);
  std::vector<std::pair<int64_t, int64_t>> SparseMap(const TarItem &e, int64_t at);
  void CheckMap(const std::vector<std::pair<int64_t, int64_t>> &map, const TarItem &e, int64_t size, int64_t at);
  std::string Body(int64_t size, int64_t at, const std::string &what);
  std::vector<Record> ParseRecords(const std::string &body, int64_t at);
  void SkipData();

  // The stream, read in exact amounts.
  bool Fill(size_t n);
  const char *Take(size_t n);
  size_t ReadInto(char *dst, size_t n);
  uint64_t Skip(uint64_t n);
  void Drain();
  size_t Buffered() const { return hi_ - lo_; }
  int64_t End() const { return pos_ + Buffered(); }

  int64_t Number(const char *block, int off, int len, const char *what, int64_t at);
  int64_t Safe(int64_t n, const char *what, int64_t at);
  std::string Corrupt(int64_t at, const std::string &what);
  [[noreturn]] void Truncated(int64_t at, const std::string &what, int64_t header = -1);
  [[noreturn]] void SourceFailed();

  TarItem *Wait(std::chrono::milliseconds most);
  template <typename Ready>
  void WaitRoom(std::unique_lock<std::mutex> &hold, Ready ready);
  char *TakeRing(size_t length, uint64_t *end);
  void Push(TarItem e);

  ArchiveInput input_;
  std::string label_;
  std::vector<char> buf_;
  size_t lo_ = 0, hi_ = 0;
  // The stream offset of the next byte to take, and of every byte received.
  int64_t pos_ = 0, received_ = 0;
  bool eof_ = false;
  // The entry whose data is being read, and the last one: for messages.
  bool in_entry_ = false, has_previous_ = false;
  std::string current_, previous_;
  int64_t current_offset_ = 0;
  int64_t remaining_ = 0, padding_ = 0;
  std::vector<Record> global_;
  bool without_marker_ = false;

  std::unique_ptr<char[]> ring_;
  uint64_t taken_ = 0, given_ = 0;
  std::mutex lock_;
  // The writer waits on ready_, the reader on room_.
  std::condition_variable ready_, room_;
  bool writer_waiting_ = false, reader_waiting_ = false;
  std::deque<TarItem> queue_;
  // Bytes of data in the queue.
  size_t queued_ = 0;
  bool stop_ = false, done_ = false;
  std::thread thread_;
};

}  // namespace lklfs
