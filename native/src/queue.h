// SPDX-License-Identifier: GPL-2.0
// Kernel calls from JS run on threads of our own, never on the libuv pool
// (a kernel call can block on disk I/O for as long as the image needs, and
// each calling thread becomes a kernel task). Results come back to the JS
// thread through one thread-safe function.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lklfs {

// Runs on a kernel thread: a result >= 0, or a negative errno.
using Work = std::function<long()>;
// Runs on the JS thread when Work succeeded: the promise's value.
using Settle = std::function<Napi::Value(Napi::Env, long)>;

// Where work that makes several calls failed, when not where Submit said.
struct Failure {
  const char *syscall = nullptr;
  std::string path;
};

// Queues work for the kernel threads and returns its promise. A failure
// rejects it with an errno error naming syscall and path (or what work
// put in *failure). Values in keep (the Buffers work reads or fills) stay
// alive until the promise settles.
Napi::Value Submit(Napi::Env env, const char *syscall, std::string path, Work work,
                   Settle settle = nullptr, std::vector<Napi::Value> keep = {},
                   std::shared_ptr<Failure> failure = nullptr);

// Starts the machinery for this env; QueueStop() drops the calls not yet
// started and joins the threads (at exit).
void QueueInit(Napi::Env env);
void QueueStop();

}  // namespace lklfs
