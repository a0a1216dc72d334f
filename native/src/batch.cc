// SPDX-License-Identifier: GPL-2.0
// batch(ops): many small calls in one trip to a kernel thread: one
// promise each would spend most of the time handing work between
// threads. The engine decides what to call; this only runs the list, in
// order.
//
// An op is [name, tolerant, ...args]. The result is one number per op
// run: its return value or a negative errno. A failing op stops the batch
// unless it is tolerant and failed with EPERM or EOPNOTSUPP (metadata the
// filesystem cannot hold; for owners also EINVAL, an id it cannot map), so
// the results end at the op that stopped it.
#include <memory>
#include <string>
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
};

struct Op {
  Code code;
  bool tolerant;
  std::string a, b;  // a: the path acted on; b: a second path
  int64_t n[3];
};

long Run(const Op &op) {
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
  }
  return -LKL_EINVAL;
}

// Each op: [name, tolerant, paths..., numbers...]; arity checked here,
// on the JS thread.
Op Parse(Napi::Env env, Napi::Value v) {
  static const struct {
    const char *name;
    Code code;
    int paths, numbers;
  } kinds[] = {
      {"mkdir", Code::Mkdir, 1, 1},     {"symlink", Code::Symlink, 2, 0}, {"link", Code::Link, 2, 0},
      {"mknod", Code::Mknod, 1, 3},     {"lchown", Code::Lchown, 1, 2},   {"chmod", Code::Chmod, 1, 1},
      {"lutimes", Code::Lutimes, 1, 2}, {"unlink", Code::Unlink, 1, 0},
  };
  if (!v.IsArray()) throw Napi::TypeError::New(env, "each op must be an array");
  auto arr = v.As<Napi::Array>();
  std::string name = arr.Get(0u).ToString().Utf8Value();
  for (auto &k : kinds) {
    if (name != k.name) continue;
    if (arr.Length() != static_cast<uint32_t>(2 + k.paths + k.numbers))
      throw Napi::TypeError::New(env, "wrong number of arguments for op " + name);
    Op op{k.code, arr.Get(1u).ToBoolean().Value(), {}, {}, {0, 0, 0}};
    for (int i = 0; i < k.paths; i++) {
      Napi::Value p = arr.Get(2 + i);
      std::string s = p.IsBuffer() ? std::string(p.As<Napi::Buffer<char>>().Data(), p.As<Napi::Buffer<char>>().Length())
                                   : p.ToString().Utf8Value();
      (i == 0 ? op.a : op.b) = std::move(s);
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
  return Submit(
      env, "batch", "",
      [=]() -> long {
        for (const Op &op : *ops) {
          long ret = Cancelled() ? -LKL_ECANCELED : Run(op);
          results->push_back(ret);
          bool owner = op.code == Code::Lchown;
          bool tolerated = op.tolerant && (ret == -LKL_EPERM || ret == -LKL_EOPNOTSUPP || (owner && ret == -LKL_EINVAL));
          if (ret < 0 && !tolerated) break;
        }
        return 0;
      },
      [results](Napi::Env env, long) {
        Napi::Object o = Napi::Object::New(env);
        Napi::Array a = Napi::Array::New(env, results->size());
        for (size_t i = 0; i < results->size(); i++) a.Set(i, Napi::Number::New(env, (*results)[i]));
        o.Set("results", a);
        return o;
      });
}

}  // namespace

void RegisterBatch(Napi::Env env, Napi::Object exports) {
  exports.Set("batch", Napi::Function::New(env, Batch, "batch"));
}

}  // namespace lklfs
