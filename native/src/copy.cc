// SPDX-License-Identifier: GPL-2.0
// Whole-file copies between the host and the kernel, done on a kernel
// thread without the data ever passing through JS: copyIn(hostPath,
// kernelPath, mode) and copyOut(kernelPath, hostPath, mode). Holes stay
// holes (SEEK_DATA/SEEK_HOLE), so sparse files stay sparse.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel_api.h"

#include <cerrno>
#include <vector>

#include "args.h"
#include "exports.h"
#include "copy.h"
#include "queue.h"

namespace lklfs {
namespace {

constexpr size_t kChunk = 1 << 20;

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

// Copies size bytes, data extents only; *failure names the side that failed.
long CopyData(const Side &src, int in, const Side &dst, int out, int64_t size, Failure *failure,
              const std::string &src_path, const std::string &dst_path) {
  thread_local std::vector<char> buf(kChunk);
  auto fail = [&](long err, const char *call, const std::string &path) {
    failure->syscall = call;
    failure->path = path;
    return err;
  };
  for (int64_t off = 0; off < size;) {
    long data = src.seek(in, off, SEEK_DATA);
    if (data == -ENXIO) break;  // only a hole is left
    long hole = data < 0 ? size : src.seek(in, data, SEEK_HOLE);
    if (data < 0) data = off;  // no SEEK_DATA here: all of it is data
    if (hole < 0 || hole > size) hole = size;
    for (off = data; off < hole;) {
      size_t want = std::min<int64_t>(kChunk, hole - off);
      long n = src.pread(in, buf.data(), want, off);
      if (n < 0) return fail(n, "read", src_path);
      if (n == 0) return fail(-EIO, "read", src_path);  // shrank while we copied
      for (long put = 0; put < n;) {
        long w = dst.pwrite(out, buf.data() + put, n - put, off + put);
        if (w < 0) return fail(w, "write", dst_path);
        put += w;
      }
      off += n;
    }
  }
  long ret = dst.truncate(out, size);  // a trailing hole sets the size
  return ret < 0 ? fail(ret, "ftruncate", dst_path) : 0;
}

}  // namespace

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

void RegisterCopy(Napi::Env env, Napi::Object exports) {
  exports.Set("copyIn", Napi::Function::New(env, CopyIn, "copyIn"));
  exports.Set("copyOut", Napi::Function::New(env, CopyOut, "copyOut"));
}

}  // namespace lklfs
