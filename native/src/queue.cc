// SPDX-License-Identifier: GPL-2.0
#include "queue.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "errors.h"

namespace lklfs {
namespace {

// Enough for a walk to keep a few calls in flight while one blocks on the
// disk; the kernel has one CPU, so more would only add switching.
constexpr size_t kThreads = 4;

struct Job {
  const char *syscall;
  std::string path;
  Work work;
  Settle settle;
  std::vector<Napi::Reference<Napi::Value>> keep;
  Napi::Promise::Deferred deferred;
  std::shared_ptr<Failure> failure;
  long ret = 0;
};

void Deliver(Napi::Env env, Napi::Function, void *, Job *job);
using Tsfn = Napi::TypedThreadSafeFunction<void, Job, Deliver>;

struct Queue {
  std::mutex lock;
  std::condition_variable ready;
  std::deque<Job *> jobs;
  std::vector<std::thread> threads;
  bool stopping = false;
  Tsfn tsfn;
  size_t in_flight = 0;  // JS thread only
};

Queue *queue;

void Deliver(Napi::Env env, Napi::Function, void *, Job *job) {
  std::unique_ptr<Job> owned(job);
  if (env != nullptr) {
    Napi::HandleScope scope(env);
    if (job->ret < 0) {
      const Failure *f = job->failure.get();
      bool named = f && f->syscall;
      job->deferred.Reject(ErrnoError(env, job->ret, named ? f->syscall : job->syscall,
                                      named ? f->path : job->path)
                               .Value());
    } else {
      try {
        job->deferred.Resolve(job->settle ? job->settle(env, job->ret)
                                          : Napi::Number::New(env, job->ret));
      } catch (const Napi::Error &e) {
        job->deferred.Reject(e.Value());
      }
    }
    if (--queue->in_flight == 0) queue->tsfn.Unref(env);
  }
}

void Serve() {
  for (;;) {
    Job *job;
    {
      std::unique_lock<std::mutex> hold(queue->lock);
      queue->ready.wait(hold, [] { return queue->stopping || !queue->jobs.empty(); });
      if (queue->jobs.empty()) return;
      job = queue->jobs.front();
      queue->jobs.pop_front();
    }
    job->ret = job->work();
    queue->tsfn.BlockingCall(job);
  }
}

}  // namespace

void QueueInit(Napi::Env env) {
  queue = new Queue();
  queue->tsfn = Tsfn::New(env, "lklfs kernel calls", 0, 1);
  // Idle, the queue must not keep node running; Submit refs it.
  queue->tsfn.Unref(env);
  for (size_t i = 0; i < kThreads; i++) queue->threads.emplace_back(Serve);
}

void QueueStop() {
  if (!queue || queue->stopping) return;
  {
    std::lock_guard<std::mutex> hold(queue->lock);
    queue->stopping = true;
    // Not started: not run. Their promises stay pending; node is exiting.
    for (Job *job : queue->jobs) delete job;
    queue->jobs.clear();
  }
  queue->ready.notify_all();
  for (auto &t : queue->threads) t.join();
  queue->threads.clear();
  queue->tsfn.Release();
}

Napi::Value Submit(Napi::Env env, const char *syscall, std::string path, Work work, Settle settle,
                   std::vector<Napi::Value> keep, std::shared_ptr<Failure> failure) {
  if (queue->stopping) throw Napi::Error::New(env, "the kernel library has shut down");
  auto job = new Job{syscall, std::move(path), std::move(work), std::move(settle), {},
                     Napi::Promise::Deferred::New(env), std::move(failure)};
  for (auto &v : keep) job->keep.push_back(Napi::Persistent(v));
  Napi::Promise promise = job->deferred.Promise();
  if (queue->in_flight++ == 0) queue->tsfn.Ref(env);
  {
    std::lock_guard<std::mutex> hold(queue->lock);
    queue->jobs.push_back(job);
  }
  queue->ready.notify_one();
  return promise;
}

}  // namespace lklfs
