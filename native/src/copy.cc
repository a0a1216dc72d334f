// SPDX-License-Identifier: GPL-2.0
// Whole-file copies between the host and the kernel, done on a kernel
// thread without the data ever passing through JS: copyIn(hostPath,
// kernelPath, mode) and copyOut(kernelPath, hostPath, mode). Holes stay
// holes (SEEK_DATA/SEEK_HOLE), so sparse files stay sparse.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel_api.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "args.h"
#include "exports.h"
#include "copy.h"
#include "queue.h"

namespace lklfs {
namespace {

constexpr size_t kChunk = 1 << 20;

std::atomic<bool> cancelled;

// One side of a copy; every call returns a result >= 0 or a negative errno.
struct Side {
  long (*seek)(int fd, int64_t off, int whence);
  long (*pread)(int fd, char *buf, size_t len, int64_t off);
  long (*pwrite)(int fd, const char *buf, size_t len, int64_t off);
  long (*truncate)(int fd, int64_t len);
};

long Neg(long ret) { return ret < 0 ? -errno : ret; }

const Side kHost = {
    [](int fd, int64_t off, int whence) { return Neg(lseek(fd, off, whence)); },
    [](int fd, char *buf, size_t len, int64_t off) { return Neg(pread(fd, buf, len, off)); },
    [](int fd, const char *buf, size_t len, int64_t off) { return Neg(pwrite(fd, buf, len, off)); },
    [](int fd, int64_t len) { return Neg(ftruncate(fd, len)); },
};

const Side kKernel = {
    [](int fd, int64_t off, int whence) { return lkl_sys_lseek(fd, off, whence); },
    [](int fd, char *buf, size_t len, int64_t off) { return lkl_sys_pread64(fd, buf, len, off); },
    [](int fd, const char *buf, size_t len, int64_t off) { return lkl_sys_pwrite64(fd, buf, len, off); },
    [](int fd, int64_t len) { return lkl_sys_ftruncate(fd, len); },
};

// The data extents of the first size bytes of in, cut into pieces; holes
// are left out (SEEK_DATA/SEEK_HOLE; where they are unknown, all is data).
std::vector<Piece> Pieces(const Side &src, int in, int64_t size) {
  std::vector<Piece> pieces;
  for (int64_t off = 0; off < size;) {
    long data = src.seek(in, off, SEEK_DATA);
    if (data == -ENXIO) break;  // only a hole is left
    long hole = data < 0 ? size : src.seek(in, data, SEEK_HOLE);
    if (data < 0) data = off;
    if (hole < 0 || hole > size) hole = size;
    for (off = data; off < hole; off += pieces.back().len)
      pieces.push_back({off, static_cast<size_t>(std::min<int64_t>(kChunk, hole - off))});
  }
  return pieces;
}

// A whole piece in or out: 0 or a negative errno (-EIO: the file shrank).
long ReadPiece(const Side &src, int in, char *buf, const Piece &p) {
  for (size_t got = 0; got < p.len;) {
    long n = src.pread(in, buf + got, p.len - got, p.off + got);
    if (n <= 0) return n < 0 ? n : -EIO;
    got += n;
  }
  return 0;
}

long WritePiece(const Side &dst, int out, const char *buf, const Piece &p) {
  for (size_t put = 0; put < p.len;) {
    long n = dst.pwrite(out, buf + put, p.len - put, p.off + put);
    if (n < 0) return n;
    put += n;
  }
  return 0;
}

// Big copies overlap their two halves: the host's reads or writes run on
// a thread of their own while the kernel does its half (on this thread,
// the kernel task that runs the job), a few pieces apart.
constexpr int64_t kPipelineMin = 8 << 20;
constexpr int kBuffers = 4;

class Pipeline {
 public:
  Pipeline(const Side &src, int in, const Side &dst, int out, const std::vector<Piece> &pieces)
      : src_(src), dst_(dst), in_(in), out_(out), pieces_(pieces), bufs_(kBuffers) {
    for (int i = 0; i < kBuffers; i++) {
      bufs_[i].resize(kChunk);
      free_.push_back(i);
    }
  }

  // Runs both halves; a failure's errno, its side in *read_failed.
  long Run(bool host_reads, bool *read_failed) {
    std::thread helper([this, host_reads] { host_reads ? Produce() : Consume(); });
    host_reads ? Consume() : Produce();
    helper.join();
    *read_failed = read_failed_;
    return err_;
  }

 private:
  void Produce() {
    for (size_t i = 0; i < pieces_.size(); i++) {
      int b;
      {
        std::unique_lock<std::mutex> hold(lock_);
        moved_.wait(hold, [this] { return err_ || !free_.empty(); });
        if (err_) break;
        b = free_.front();
        free_.pop_front();
      }
      long ret = cancelled ? -ECANCELED : ReadPiece(src_, in_, bufs_[b].data(), pieces_[i]);
      std::lock_guard<std::mutex> hold(lock_);
      if (ret < 0) {
        Fail(ret, true);
        break;
      }
      filled_.push_back({i, b});
      moved_.notify_all();
    }
    std::lock_guard<std::mutex> hold(lock_);
    reading_ = false;
    moved_.notify_all();
  }

  void Consume() {
    for (;;) {
      std::pair<size_t, int> next;
      {
        std::unique_lock<std::mutex> hold(lock_);
        moved_.wait(hold, [this] { return err_ || !filled_.empty() || !reading_; });
        if (err_ || filled_.empty()) return;
        next = filled_.front();
        filled_.pop_front();
      }
      long ret = WritePiece(dst_, out_, bufs_[next.second].data(), pieces_[next.first]);
      std::lock_guard<std::mutex> hold(lock_);
      if (ret < 0) return Fail(ret, false);
      free_.push_back(next.second);
      moved_.notify_all();
    }
  }

  // Under lock_: the first failure stops both halves.
  void Fail(long err, bool reading) {
    if (!err_) {
      err_ = err;
      read_failed_ = reading;
    }
    moved_.notify_all();
  }

  const Side &src_, &dst_;
  int in_, out_;
  const std::vector<Piece> &pieces_;
  std::vector<std::vector<char>> bufs_;
  std::mutex lock_;
  std::condition_variable moved_;
  std::deque<int> free_;
  std::deque<std::pair<size_t, int>> filled_;  // piece, buffer
  bool reading_ = true;
  long err_ = 0;
  bool read_failed_ = false;
};

// Copies size bytes, data extents only; *failure names the side that failed.
long CopyData(const Side &src, int in, const Side &dst, int out, int64_t size, Failure *failure,
              const std::string &src_path, const std::string &dst_path) {
  auto fail = [&](long err, bool reading) {
    *failure = reading ? Failure{"read", src_path} : Failure{"write", dst_path};
    return err;
  };
  std::vector<Piece> pieces = Pieces(src, in, size);
  int64_t data = 0;
  for (const Piece &p : pieces) data += p.len;
  if (data >= kPipelineMin) {
    bool read_failed;
    long err = Pipeline(src, in, dst, out, pieces).Run(&src == &kHost, &read_failed);
    if (err < 0) return fail(err, read_failed);
  } else {
    thread_local std::vector<char> buf(kChunk);
    for (const Piece &p : pieces) {
      long ret = cancelled ? -ECANCELED : ReadPiece(src, in, buf.data(), p);
      if (ret < 0) return fail(ret, true);
      ret = WritePiece(dst, out, buf.data(), p);
      if (ret < 0) return fail(ret, false);
    }
  }
  long ret = dst.truncate(out, size);  // a trailing hole sets the size
  if (ret < 0) *failure = {"ftruncate", dst_path};
  return ret < 0 ? ret : 0;
}

}  // namespace

bool Cancelled() { return cancelled; }
void CancelAll() { cancelled = true; }

long CopyFileIn(const std::string &host, const std::string &path, long mode, Failure *failure) {
  int in = open(host.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (in < 0 || fstat(in, &st) < 0) {
    long err = -errno;
    if (in >= 0) close(in);
    *failure = {"open", host};
    return err;
  }
  long out = lkl_sys_openat(LKL_AT_FDCWD, path.c_str(), LKL_O_WRONLY | LKL_O_CREAT | LKL_O_EXCL | LKL_O_CLOEXEC, mode);
  if (out < 0) {
    close(in);
    *failure = {"open", path};
    return out;
  }
  long ret = CopyData(kHost, in, kKernel, out, st.st_size, failure, host, path);
  long closed = lkl_sys_close(out);
  close(in);
  if (ret >= 0 && closed < 0) *failure = {"close", path};
  return ret < 0 ? ret : closed < 0 ? closed : st.st_size;
}

long CopyFileOut(const std::string &path, const std::string &host, long mode, Failure *failure) {
  struct lkl_stat st;
  long in = lkl_sys_openat(LKL_AT_FDCWD, path.c_str(), LKL_O_RDONLY | LKL_O_NOFOLLOW | LKL_O_CLOEXEC, 0);
  long ret = in < 0 ? in : lkl_sys_fstat(in, &st);
  if (ret < 0) {
    if (in >= 0) lkl_sys_close(in);
    *failure = {"open", path};
    return ret;
  }
  int out = open(host.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (out < 0) {
    ret = -errno;
    lkl_sys_close(in);
    *failure = {"open", host};
    return ret;
  }
  ret = CopyData(kKernel, in, kHost, out, st.st_size, failure, path, host);
  long closed = close(out) < 0 ? -errno : 0;
  DropCache(in, 0, 0);
  lkl_sys_close(in);
  if (ret >= 0 && closed < 0) *failure = {"close", host};
  return ret < 0 ? ret : closed < 0 ? closed : st.st_size;
}

std::vector<Piece> KernelPieces(long in, int64_t size) { return Pieces(kKernel, in, size); }

long ReadKernelPiece(long in, char *buf, const Piece &p) { return ReadPiece(kKernel, in, buf, p); }

long WriteHostPiece(int out, const char *buf, const Piece &p) { return WritePiece(kHost, out, buf, p); }

long CopyDataOut(long in, int out, int64_t size, Failure *failure, const std::string &src, const std::string &dst) {
  return CopyData(kKernel, in, kHost, out, size, failure, src, dst);
}

namespace {

Napi::Value CopyIn(const Napi::CallbackInfo &info) {
  std::string host = PathArg(info, 0), path = PathArg(info, 1);
  long mode = IntArg(info, 2);
  auto failure = std::make_shared<Failure>();
  return Submit(
      info.Env(), "copy", path, [=] { return CopyFileIn(host, path, mode, failure.get()); }, nullptr, {}, failure);
}

Napi::Value CopyOut(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0), host = PathArg(info, 1);
  long mode = IntArg(info, 2);
  auto failure = std::make_shared<Failure>();
  return Submit(
      info.Env(), "copy", path, [=] { return CopyFileOut(path, host, mode, failure.get()); }, nullptr, {}, failure);
}

}  // namespace

// cancel(): what is in flight stops at its next piece (see copy.h).
Napi::Value Cancel(const Napi::CallbackInfo &info) {
  CancelAll();
  return info.Env().Undefined();
}

void RegisterCopy(Napi::Env env, Napi::Object exports) {
  exports.Set("cancel", Napi::Function::New(env, Cancel, "cancel"));
  exports.Set("copyIn", Napi::Function::New(env, CopyIn, "copyIn"));
  exports.Set("copyOut", Napi::Function::New(env, CopyOut, "copyOut"));
}

}  // namespace lklfs
