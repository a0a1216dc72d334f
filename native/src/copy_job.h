// SPDX-License-Identifier: GPL-2.0
// What the copies JavaScript drives a step at a time share (TreeCopyIn,
// TreeCopyOut, TarCopyIn): the engine's answer to the entry a step
// stopped at, the running totals each step reports, and the one way a
// step or close runs: on a kernel thread, one in flight per copy.
#pragma once

#include <napi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "queue.h"

namespace lklfs {

// What to do with the entry the last step stopped at.
enum class Resume { None, Retry, Merge, Skip };

// A resume from JS: "retry", "merge" or "skip"; none when v is no string.
inline Resume ResumeValue(Napi::Env env, Napi::Value v, const char *what) {
  if (!v.IsString()) return Resume::None;
  std::string s = v.As<Napi::String>().Utf8Value();
  Resume resume = s == "retry" ? Resume::Retry : s == "merge" ? Resume::Merge : s == "skip" ? Resume::Skip : Resume::None;
  if (resume == Resume::None) throw Napi::TypeError::New(env, std::string(what) + " must be retry, merge or skip");
  return resume;
}

struct Totals {
  int64_t entries = 0, files = 0, bytes = 0, hardlinks = 0;
};

inline Napi::Object TotalsObject(Napi::Env env, const Totals &t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("entries", Napi::Number::New(env, t.entries));
  o.Set("files", Napi::Number::New(env, t.files));
  o.Set("bytes", Napi::Number::New(env, t.bytes));
  o.Set("hardlinks", Napi::Number::New(env, t.hardlinks));
  return o;
}

// Warnings as [[what, path (bytes), errno]]; W has what, path and err.
template <typename W>
Napi::Array WarningsArray(Napi::Env env, const std::vector<W> &warnings) {
  Napi::Array a = Napi::Array::New(env, warnings.size());
  for (size_t i = 0; i < warnings.size(); i++) {
    Napi::Array w = Napi::Array::New(env, 3);
    w.Set(0u, warnings[i].what);
    w.Set(1u, Napi::Buffer<char>::Copy(env, warnings[i].path.data(), warnings[i].path.size()));
    w.Set(2u, Napi::Number::New(env, warnings[i].err));
    a.Set(i, w);
  }
  return a;
}

// Runs work(*job) on a kernel thread and settles with settle(env); Job
// has a busy flag, touched on the JS thread only, that keeps a second
// step or close of the same copy out while one is in flight.
template <typename Job>
Napi::Value RunCopyJob(Napi::Env env, const char *copy, const char *syscall, std::shared_ptr<Job> job,
                       std::function<void(Job &)> work, std::function<Napi::Value(Napi::Env)> settle) {
  if (job->busy) throw Napi::Error::New(env, std::string(copy) + ": one step at a time");
  job->busy = true;
  return Submit(
      env, syscall, "",
      [job, work]() -> long {
        work(*job);
        return 0;
      },
      [job, settle](Napi::Env env, long) {
        job->busy = false;
        return settle(env);
      });
}

}  // namespace lklfs
