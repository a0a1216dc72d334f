// SPDX-License-Identifier: GPL-2.0
// File descriptors inside the kernel: open, read and write through JS
// Buffers, fsync, ioctl, close; and the kernel's constants the engine needs.
#include "kernel_api.h"

#include "args.h"
#include "exports.h"
#include "queue.h"

namespace lklfs {
namespace {

// open(path, flags, mode) -> fd; flags are the kernel's (constants.O_*).
Napi::Value Open(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  long flags = IntArg(info, 1) | LKL_O_CLOEXEC, mode = IntArg(info, 2);
  return Submit(info.Env(), "open", path,
                [=] { return lkl_sys_openat(LKL_AT_FDCWD, path.c_str(), flags, mode); });
}

Napi::Value Close(const Napi::CallbackInfo &info) {
  long fd = IntArg(info, 0);
  return Submit(info.Env(), "close", "", [=] { return lkl_sys_close(fd); });
}

// read(fd, buffer, offset, length, position) -> bytes read; position -1
// reads at the file's offset. Fills as much as it can: short only at EOF.
// What it read leaves the kernel's page cache (see DropCache).
// write(fd, buffer, offset, length, position) -> bytes written (all of them).
Napi::Value Transfer(const Napi::CallbackInfo &info, bool write) {
  long fd = IntArg(info, 0);
  Span span = SpanArg(info, 1);
  int64_t pos = IntArg(info, 4);
  char *data = span.data;
  size_t len = span.length;
  return Submit(
      info.Env(), write ? "write" : "read", "",
      [=]() -> long {
        size_t done = 0;
        while (done < len) {
          long n;
          if (write)
            n = pos < 0 ? lkl_sys_write(fd, data + done, len - done)
                        : lkl_sys_pwrite64(fd, data + done, len - done, pos + done);
          else
            n = pos < 0 ? lkl_sys_read(fd, data + done, len - done)
                        : lkl_sys_pread64(fd, data + done, len - done, pos + done);
          if (n < 0) return n;
          if (n == 0) break;  // end of file (a write never returns 0)
          done += n;
        }
        if (!write && pos >= 0) DropCache(fd, pos, done);
        return done;
      },
      nullptr, {span.buffer});
}

Napi::Value Read(const Napi::CallbackInfo &info) { return Transfer(info, false); }
Napi::Value Write(const Napi::CallbackInfo &info) { return Transfer(info, true); }

Napi::Value Fsync(const Napi::CallbackInfo &info) {
  long fd = IntArg(info, 0);
  return Submit(info.Env(), "fsync", "", [=] { return lkl_sys_fsync(fd); });
}

// ioctl(fd, request, buffer) -> the call's result. The argument is the
// Buffer's memory: the request's struct, read and/or filled by the kernel
// as the request number says (the engine encodes both).
Napi::Value Ioctl(const Napi::CallbackInfo &info) {
  long fd = IntArg(info, 0);
  unsigned int request = IntArg(info, 1);
  if (!info[2].IsBuffer()) throw Napi::TypeError::New(info.Env(), "argument 2 must be a Buffer");
  auto arg = info[2].As<Napi::Buffer<char>>();
  unsigned long data = reinterpret_cast<unsigned long>(arg.Data());
  return Submit(
      info.Env(), "ioctl", "", [=] { return lkl_sys_ioctl(fd, request, data); }, nullptr, {arg});
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  struct {
    const char *name;
    long value;
  } values[] = {
      {"O_RDONLY", LKL_O_RDONLY},     {"O_WRONLY", LKL_O_WRONLY}, {"O_RDWR", LKL_O_RDWR},
      {"O_CREAT", LKL_O_CREAT},       {"O_EXCL", LKL_O_EXCL},     {"O_TRUNC", LKL_O_TRUNC},
      {"O_APPEND", LKL_O_APPEND},     {"O_DIRECTORY", LKL_O_DIRECTORY},
      {"O_NOFOLLOW", LKL_O_NOFOLLOW}, {"O_NONBLOCK", LKL_O_NONBLOCK}, {"S_IFMT", LKL_S_IFMT},
      {"S_IFREG", LKL_S_IFREG},
      {"S_IFDIR", LKL_S_IFDIR},       {"S_IFLNK", LKL_S_IFLNK},   {"S_IFCHR", LKL_S_IFCHR},
      {"S_IFBLK", LKL_S_IFBLK},       {"S_IFIFO", LKL_S_IFIFO},   {"S_IFSOCK", LKL_S_IFSOCK},
  };
  for (auto &v : values) c.Set(v.name, Napi::Number::New(env, v.value));
  return c;
}

}  // namespace

void RegisterFiles(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("fsync", Napi::Function::New(env, Fsync, "fsync"));
  exports.Set("ioctl", Napi::Function::New(env, Ioctl, "ioctl"));
  exports.Set("constants", Constants(env));
}

}  // namespace lklfs
