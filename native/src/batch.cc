// SPDX-License-Identifier: GPL-2.0
// batch(ops): many small calls in one trip to a kernel thread. A copy into
// an image makes five or six calls per file (create, owner, mode, xattrs,
// times); one promise each would spend most of the time handing work
// between threads. The engine decides what to call; this only runs the
// list, in order.
//
// Data for the image travels in the batch itself (writeFile, writeAt,
// setXattrs): a Buffer, or an array of pieces written one after the
// other, each a Buffer (read where it lies in JS memory, kept alive until
// the batch settles) or a range of an open host file ({fd, offset,
// length}: read here, the data never passing through JS), so that an
// archive's small files cost no trip each.
//
// An op is [name, tolerant, ...args]. The result is one number per op
// run: its return value or a negative errno. A failing op stops the batch
// unless it is tolerant and failed with EPERM or EOPNOTSUPP (metadata the
// filesystem cannot hold; for owners also EINVAL, an id it cannot map), so
// the results end at the op that stopped it.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "kernel_api.h"

#include "args.h"
#include "copy.h"
#include "exports.h"
#include "queue.h"
#include "xattrs.h"

namespace lklfs {
namespace {

constexpr long kCwd = LKL_AT_FDCWD;
constexpr long kNoFollow = LKL_AT_SYMLINK_NOFOLLOW;

enum class Code {
  Mkdir, Symlink, Link, Mknod, Lchown, Chmod, Lutimes, Unlink, WriteFile, WriteAt, Truncate, SetXattrs,
};

// Bytes inside a Buffer that the batch keeps alive, or (data null) the
// bytes of host file fd from offset.
struct Span {
  const char *data;
  size_t length;
  int fd;
  int64_t offset;
};

struct Op {
  Code code;
  bool tolerant;
  std::string a, b;  // a: the path acted on; b: a second path
  std::vector<Span> data;
  int64_t n[3];
};

// Attributes onto kernel path: the first tolerated failure is the result
// (the rest are still tried), any other failure stops.
long SetXattrs(const std::string &path, const Xattrs &xattrs, bool tolerant) {
  long tolerated = 0;
  for (auto &x : xattrs) {
    long ret = lkl_sys_lsetxattr(path.c_str(), x.first.c_str(), x.second.data(), x.second.size(), 0);
    if (ret < 0 && tolerant && (ret == -LKL_EPERM || ret == -LKL_EOPNOTSUPP)) {
      tolerated = tolerated ? tolerated : ret;
      continue;
    }
    if (ret < 0) return ret;
  }
  return tolerated;
}

// setXattrs' one Buffer: for each attribute a little-endian u32 length
// and the name, a u32 length and the value (src/kernel/binding.ts packs it).
long UnpackXattrs(const Span &packed, Xattrs *out) {
  auto field = [&](size_t *at, std::string *into) {
    uint32_t len;
    if (packed.length - *at < sizeof(len)) return false;
    memcpy(&len, packed.data + *at, sizeof(len));
    *at += sizeof(len);
    if (packed.length - *at < len) return false;
    into->assign(packed.data + *at, len);
    *at += len;
    return true;
  };
  for (size_t at = 0; at < packed.length;) {
    std::string name, value;
    if (!field(&at, &name) || !field(&at, &value) || name.find('\0') != std::string::npos) return -LKL_EINVAL;
    out->emplace_back(std::move(name), std::move(value));
  }
  return 0;
}

long WriteAll(long fd, const char *data, size_t length, int64_t off) {
  for (size_t put = 0; put < length;) {
    long n = lkl_sys_pwrite64(fd, data + put, length - put, off + put);
    if (n < 0) return n;
    put += n;
  }
  return 0;
}

// A host file's range into kernel file fd at off, a piece at a time; a
// host file shorter than the range is -EIO (read failures in *read_failed).
long CopyRange(long fd, const Span &s, int64_t off, bool *read_failed) {
  constexpr size_t kPiece = 1 << 20;
  thread_local std::vector<char> buf(kPiece);
  for (size_t done = 0; done < s.length;) {
    ssize_t n = pread(s.fd, buf.data(), std::min(kPiece, s.length - done), s.offset + done);
    if (n <= 0) {
      *read_failed = true;
      return n < 0 ? -errno : -LKL_EIO;
    }
    long ret = WriteAll(fd, buf.data(), n, off + done);
    if (ret < 0) return ret;
    done += n;
  }
  return 0;
}

// The spans written one after the other from off: bytes written or -errno.
long WriteSpans(long fd, const std::vector<Span> &spans, int64_t off, bool *read_failed) {
  int64_t start = off;
  for (const Span &s : spans) {
    long ret = s.data ? WriteAll(fd, s.data, s.length, off) : CopyRange(fd, s, off, read_failed);
    if (ret < 0) return ret;
    off += s.length;
  }
  return off - start;
}

// writeFile: a new file (O_EXCL: one in the way is the caller's to
// replace) with its whole content; writeAt: more of a file's content.
long WriteData(const Op &op, bool create, Failure *failure) {
  long flags = LKL_O_WRONLY | LKL_O_NOFOLLOW | LKL_O_CLOEXEC | (create ? LKL_O_CREAT | LKL_O_EXCL : 0);
  long fd = lkl_sys_openat(kCwd, op.a.c_str(), flags, create ? op.n[0] : 0);
  if (fd < 0) return fd;
  bool read_failed = false;
  long ret = WriteSpans(fd, op.data, create ? 0 : op.n[0], &read_failed);
  long closed = lkl_sys_close(fd);
  if (ret < 0 || closed < 0) *failure = ret >= 0 ? Failure{"close", op.a} : read_failed ? Failure{"pread", "the archive"} : Failure{"write", op.a};
  return ret < 0 ? ret : closed < 0 ? closed : ret;
}

long Run(const Op &op, Failure *failure) {
  const char *a = op.a.c_str(), *b = op.b.c_str();
  switch (op.code) {
    case Code::Mkdir:
      return lkl_sys_mkdirat(kCwd, a, op.n[0]);
    case Code::Symlink:
      return lkl_sys_symlinkat(b, kCwd, a);
    case Code::Link:
      return lkl_sys_linkat(kCwd, b, kCwd, a, 0);
    case Code::Mknod: {
      return lkl_sys_mknodat(kCwd, a, op.n[0], EncodeDev(op.n[1], op.n[2]));
    }
    case Code::Lchown:
      return lkl_sys_fchownat(kCwd, a, op.n[0], op.n[1], kNoFollow);
    case Code::Chmod:
      return lkl_sys_fchmodat(kCwd, a, op.n[0]);
    case Code::Lutimes: {
      struct __lkl__kernel_timespec ts[2] = {SplitNs<struct __lkl__kernel_timespec>(op.n[0]),
                                             SplitNs<struct __lkl__kernel_timespec>(op.n[1])};
      return lkl_sys_utimensat(kCwd, a, ts, kNoFollow);
    }
    case Code::Unlink:
      return lkl_sys_unlinkat(kCwd, a, 0);
    case Code::WriteFile:
      return WriteData(op, true, failure);
    case Code::WriteAt:
      return WriteData(op, false, failure);
    case Code::Truncate:
      return lkl_sys_truncate(a, op.n[0]);
    case Code::SetXattrs: {
      Xattrs xattrs;
      long ret = UnpackXattrs(op.data.at(0), &xattrs);
      return ret < 0 ? ret : SetXattrs(op.a, xattrs, op.tolerant);
    }
  }
  return -LKL_EINVAL;
}

// A data argument: a Buffer or an array of Buffers (kept alive in *keep)
// and host file ranges.
void DataArg(Napi::Env env, Napi::Value v, std::vector<Span> *spans, std::vector<Napi::Value> *keep) {
  auto add = [&](Napi::Value b) {
    if (b.IsBuffer()) {
      auto buf = b.As<Napi::Buffer<char>>();
      spans->push_back({buf.Data(), buf.Length(), -1, 0});
      keep->push_back(b);
      return;
    }
    if (!b.IsObject()) throw Napi::TypeError::New(env, "data must be Buffers or {fd, offset, length} ranges");
    auto range = b.As<Napi::Object>();
    auto number = [&](const char *key) {
      Napi::Value n = range.Get(key);
      if (!n.IsNumber() || n.As<Napi::Number>().Int64Value() < 0)
        throw Napi::TypeError::New(env, std::string("a host range's ") + key + " must be a number >= 0");
      return n.As<Napi::Number>().Int64Value();
    };
    int64_t fd = number("fd"), offset = number("offset"), length = number("length");
    spans->push_back({nullptr, static_cast<size_t>(length), static_cast<int>(fd), offset});
  };
  if (!v.IsArray()) return add(v);
  auto list = v.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) add(list.Get(i));
}

// Each op: [name, tolerant, paths..., data..., numbers...]; arity checked
// here, on the JS thread.
Op Parse(Napi::Env env, Napi::Value v, std::vector<Napi::Value> *keep) {
  static const struct {
    const char *name;
    Code code;
    int paths, data, numbers;
  } kinds[] = {
      {"mkdir", Code::Mkdir, 1, 0, 1},           {"symlink", Code::Symlink, 2, 0, 0},
      {"link", Code::Link, 2, 0, 0},             {"mknod", Code::Mknod, 1, 0, 3},
      {"lchown", Code::Lchown, 1, 0, 2},         {"chmod", Code::Chmod, 1, 0, 1},
      {"lutimes", Code::Lutimes, 1, 0, 2},       {"unlink", Code::Unlink, 1, 0, 0},
      {"writeFile", Code::WriteFile, 1, 1, 1},     {"writeAt", Code::WriteAt, 1, 1, 1},
      {"truncate", Code::Truncate, 1, 0, 1},       {"setXattrs", Code::SetXattrs, 1, 1, 0},
  };
  if (!v.IsArray()) throw Napi::TypeError::New(env, "each op must be an array");
  auto arr = v.As<Napi::Array>();
  std::string name = arr.Get(0u).ToString().Utf8Value();
  for (auto &k : kinds) {
    if (name != k.name) continue;
    if (arr.Length() != static_cast<uint32_t>(2 + k.paths + k.data + k.numbers))
      throw Napi::TypeError::New(env, "wrong number of arguments for op " + name);
    Op op{k.code, arr.Get(1u).ToBoolean().Value(), {}, {}, {}, {0, 0, 0}};
    for (int i = 0; i < k.paths; i++) {
      Napi::Value p = arr.Get(2 + i);
      std::string s = p.IsBuffer() ? std::string(p.As<Napi::Buffer<char>>().Data(), p.As<Napi::Buffer<char>>().Length())
                                   : p.ToString().Utf8Value();
      (i == 0 ? op.a : op.b) = std::move(s);
    }
    if (k.data) DataArg(env, arr.Get(2 + k.paths), &op.data, keep);
    for (int i = 0; i < k.numbers; i++) {
      Napi::Value n = arr.Get(2 + k.paths + k.data + i);
      bool lossless = true;
      op.n[i] = n.IsBigInt() ? n.As<Napi::BigInt>().Int64Value(&lossless) : n.ToNumber().Int64Value();
    }
    return op;
  }
  throw Napi::TypeError::New(env, "unknown op " + name);
}

Napi::Value Batch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "batch takes an array of ops");
  auto list = info[0].As<Napi::Array>();
  auto ops = std::make_shared<std::vector<Op>>();
  std::vector<Napi::Value> keep;
  for (uint32_t i = 0; i < list.Length(); i++) ops->push_back(Parse(env, list.Get(i), &keep));
  auto results = std::make_shared<std::vector<long>>();
  auto failure = std::make_shared<Failure>();
  return Submit(
      env, "batch", "",
      [=]() -> long {
        for (const Op &op : *ops) {
          Failure where;
          long ret = Cancelled() ? -LKL_ECANCELED : Run(op, &where);
          results->push_back(ret);
          bool owner = op.code == Code::Lchown;
          bool tolerated = op.tolerant && (ret == -LKL_EPERM || ret == -LKL_EOPNOTSUPP || (owner && ret == -LKL_EINVAL));
          if (ret < 0 && !tolerated) {
            // A failure inside a copy names its side; the others the op.
            if (where.syscall) *failure = where;
            break;
          }
        }
        return 0;
      },
      [results, failure](Napi::Env env, long) {
        Napi::Object o = Napi::Object::New(env);
        Napi::Array a = Napi::Array::New(env, results->size());
        for (size_t i = 0; i < results->size(); i++) a.Set(i, Napi::Number::New(env, (*results)[i]));
        o.Set("results", a);
        if (failure->syscall) {
          o.Set("syscall", failure->syscall);
          o.Set("path", Napi::Buffer<char>::Copy(env, failure->path.data(), failure->path.size()));
        }
        return o;
      },
      std::move(keep));
}

}  // namespace

void RegisterBatch(Napi::Env env, Napi::Object exports) {
  exports.Set("batch", Napi::Function::New(env, Batch, "batch"));
}

}  // namespace lklfs
