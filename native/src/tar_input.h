// SPDX-License-Identifier: GPL-2.0
// The bytes of a tar archive for tar2fs's reader (tar_in_reader.cc), on
// the reader's thread: a regular file read where it lies (pread), or a
// pipe read as it comes; plain, or gzip (Node's own zlib, on this thread),
// xz or zstd (the host's programs, in a pipe: they decompress on a core of
// their own), told by the first bytes. Nothing passes through JS.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace lklfs {

class ArchiveInput {
 public:
  // fd stays the caller's: it is read, never closed. file: a regular
  // file, read from its start; otherwise a pipe (or a terminal, a
  // socket), read from where it is. label names it in messages.
  ArchiveInput(int fd, bool file, std::string label);
  ~ArchiveInput();

  // Tells the compression and starts what decompresses; false with
  // error() set (a compression tar2fs does not read, a program missing).
  bool Start();
  // Up to n bytes of the tar stream: their count, 0 at its end, -1 when it
  // failed (error() says how, without where: the reader adds that).
  long Read(char *buf, size_t n);
  // Whether Skip() can go forward without reading (a plain file).
  bool Seekable() const { return kind_ == None && file_; }
  // Skips up to n bytes of a Seekable() input: how many there were.
  uint64_t Skip(uint64_t n);
  // Wakes a Read() blocked on a pipe and ends the stream (any thread).
  void Stop();

  const std::string &error() const { return error_; }

 private:
  enum Kind { None, Gzip, Tool };

  long RawRead(char *buf, size_t n, std::string *why);
  long WaitRead(int fd, char *buf, size_t n);
  long Fail(const std::string &why);
  long GzipRead(char *buf, size_t n);
  bool StartTool(const char *tool);
  long ToolRead(char *buf, size_t n);
  long ToolEnded();
  void Feed();

  int fd_;
  bool file_;
  std::string label_;
  Kind kind_ = None;
  const char *tool_ = nullptr;
  std::string error_;
  // Where a file is read next, and its size when opened.
  uint64_t offset_ = 0, size_ = 0;
  // The first bytes, read to tell the compression, given out again first.
  std::string head_;
  size_t head_at_ = 0;
  bool raw_ended_ = false;
  // Wakes blocked reads: written by Stop().
  int wake_ = -1;
  std::atomic<bool> stopped_{false};

  // gzip
  struct Inflate;
  std::unique_ptr<Inflate> z_;

  // xz, zstd: the child, its output and complaints, and for a pipe the
  // thread that feeds it what was read of the input.
  // Read by Stop() on another thread: 0 once it has been waited for.
  std::atomic<pid_t> child_{0};
  int out_ = -1, err_ = -1, in_ = -1;
  std::string stderr_;
  std::thread feeder_;
  std::string feed_error_;
};

}  // namespace lklfs
