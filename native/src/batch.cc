// SPDX-License-Identifier: GPL-2.0
// batch(ops): many small calls in one trip to a kernel thread. A copy out
// of an image makes five or six calls per file (create, owner, mode,
// xattrs, times); one promise each would spend most of the time handing
// work between threads. The engine decides what to call; this only runs
// the list, in order. Ops named host* act on the host.
//
// An op is [name, tolerant, ...args]. The result is one number per op
// run: its return value or a negative errno. A failing op stops the batch
// unless it is tolerant and failed with EPERM or EOPNOTSUPP (metadata the
// filesystem cannot hold; for owners also EINVAL, an id the host cannot
// map), so the results end at the op that stopped it.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
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
  Mkdir, Symlink, Link, Mknod, Lchown, Chmod, Lutimes, Unlink,
  HostMkdir, CopyOut, HostSymlink, HostLink, HostMknod, HostLchown, HostChmod, HostLutimes,
  HostSetXattr, HostUnlink,
};

struct Op {
  Code code;
  bool tolerant;
  std::string a, b, c;  // a: the path acted on; b, c: a second path, a name, a value
  int64_t n[3];
};

long Host(int ret) { return ret < 0 ? -errno : ret; }

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
    case Code::HostMkdir:
      return Host(mkdir(a, op.n[0]));
    case Code::CopyOut:
      return CopyFileOut(op.b, op.a, op.n[0], failure);
    case Code::HostSymlink:
      return Host(symlink(b, a));
    case Code::HostLink:
      return Host(link(b, a));
    case Code::HostMknod:
      return Host(mknod(a, op.n[0], makedev(op.n[1], op.n[2])));
    case Code::HostLchown:
      return Host(lchown(a, op.n[0], op.n[1]));
    case Code::HostChmod:
      return Host(chmod(a, op.n[0]));
    case Code::HostLutimes: {
      struct timespec ts[2] = {SplitNs<struct timespec>(op.n[0]), SplitNs<struct timespec>(op.n[1])};
      return Host(utimensat(AT_FDCWD, a, ts, AT_SYMLINK_NOFOLLOW));
    }
    case Code::HostSetXattr:
      return Host(lsetxattr(a, b, op.c.data(), op.c.size(), 0));
    case Code::HostUnlink:
      return Host(unlink(a));
  }
  return -LKL_EINVAL;
}

// Each op: [name, tolerant, paths..., numbers...]; arity checked
// here, on the JS thread.
Op Parse(Napi::Env env, Napi::Value v) {
  static const struct {
    const char *name;
    Code code;
    int paths, numbers;
  } kinds[] = {
      {"mkdir", Code::Mkdir, 1, 1},           {"symlink", Code::Symlink, 2, 0},
      {"link", Code::Link, 2, 0},             {"mknod", Code::Mknod, 1, 3},
      {"lchown", Code::Lchown, 1, 2},         {"chmod", Code::Chmod, 1, 1},
      {"lutimes", Code::Lutimes, 1, 2},       {"unlink", Code::Unlink, 1, 0},
      {"hostMkdir", Code::HostMkdir, 1, 1},   {"copyOut", Code::CopyOut, 2, 1},
      {"hostSymlink", Code::HostSymlink, 2, 0}, {"hostLink", Code::HostLink, 2, 0},
      {"hostMknod", Code::HostMknod, 1, 3},     {"hostLchown", Code::HostLchown, 1, 2},
      {"hostChmod", Code::HostChmod, 1, 1},     {"hostLutimes", Code::HostLutimes, 1, 2},
      {"hostSetXattr", Code::HostSetXattr, 3, 0}, {"hostUnlink", Code::HostUnlink, 1, 0},
  };
  if (!v.IsArray()) throw Napi::TypeError::New(env, "each op must be an array");
  auto arr = v.As<Napi::Array>();
  std::string name = arr.Get(0u).ToString().Utf8Value();
  for (auto &k : kinds) {
    if (name != k.name) continue;
    if (arr.Length() != static_cast<uint32_t>(2 + k.paths + k.numbers))
      throw Napi::TypeError::New(env, "wrong number of arguments for op " + name);
    Op op{k.code, arr.Get(1u).ToBoolean().Value(), {}, {}, {}, {0, 0, 0}};
    for (int i = 0; i < k.paths; i++) {
      Napi::Value p = arr.Get(2 + i);
      std::string s = p.IsBuffer() ? std::string(p.As<Napi::Buffer<char>>().Data(), p.As<Napi::Buffer<char>>().Length())
                                   : p.ToString().Utf8Value();
      (i == 0 ? op.a : i == 1 ? op.b : op.c) = std::move(s);
    }
    for (int i = 0; i < k.numbers; i++) {
      Napi::Value n = arr.Get(2 + k.paths + i);
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
  for (uint32_t i = 0; i < list.Length(); i++) ops->push_back(Parse(env, list.Get(i)));
  auto results = std::make_shared<std::vector<long>>();
  auto failure = std::make_shared<Failure>();
  return Submit(
      env, "batch", "",
      [=]() -> long {
        for (const Op &op : *ops) {
          Failure where;
          long ret = Cancelled() ? -LKL_ECANCELED : Run(op, &where);
          results->push_back(ret);
          bool owner = op.code == Code::Lchown || op.code == Code::HostLchown;
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
      });
}

}  // namespace

void RegisterBatch(Napi::Env env, Napi::Object exports) {
  exports.Set("batch", Napi::Function::New(env, Batch, "batch"));
}

}  // namespace lklfs
