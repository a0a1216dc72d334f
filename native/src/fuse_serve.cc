// SPDX-License-Identifier: GPL-2.0
// A FUSE mount of a filesystem mounted in our kernel: the host mount, the
// thread that serves it, and its end. JS only starts and stops it:
//   fuseMount(root, mountpoint, args) -> served (args: libfuse's, -o ...)
//   fuseWait() -> the mount is over (unmounted, or stopped) and its files
//                 in the kernel closed: the kernel's filesystem can go
//   fuseStop() -> the host's cached writes flushed, serving stopped
//   fuseLog()  -> what libfuse said since the last call (why a mount failed)
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <lkl/linux/resource.h>

#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "args.h"
#include "exports.h"
#include "fuse_ops.h"
#include "queue.h"

namespace lklfs {
namespace {

// libfuse's messages: kept while mounting (they say why a mount failed),
// on stderr once mounted (-o debug, in the foreground).
std::mutex log_lock;
std::string log_text;
bool log_kept = true;

void LogFuse(enum fuse_log_level, const char *fmt, va_list ap) {
  std::lock_guard<std::mutex> hold(log_lock);
  if (!log_kept) {
    vfprintf(stderr, fmt, ap);
    return;
  }
  char line[1024];
  vsnprintf(line, sizeof(line), fmt, ap);
  if (log_text.size() < 16 * 1024) log_text += line;
}

void KeepLog(bool keep) {
  std::lock_guard<std::mutex> hold(log_lock);
  log_kept = keep;
}

struct Server {
  FuseState state;
  struct fuse_session *session = nullptr;
  std::string mountpoint;
  dev_t dev = 0;  // the host mount's, to tell it from what it covers
  int fd = -1;    // /dev/fuse, non-blocking
  int stop = -1;  // eventfd: readable once serving must end
  // One thread serves every request. The kernel has one CPU, and a request
  // rarely waits for the image (a file in the host's page cache): with
  // more threads, each request woke one that slept (the kernel wakes the
  // longest waiting) while the one that just answered went to sleep, and
  // the threads took the kernel's CPU from one another. Measured with four
  // (the bench's tree, see README): twice the context switches for cp -a
  // in, four times for tar out, and slower.
  std::thread thread;
  std::mutex lock;
  std::condition_variable changed;
  bool prepared = false, running = false;
  long prepare_error = 0;
};

// At most one mount per process: its kernel is the process's.
std::mutex server_lock;
std::shared_ptr<Server> server;

void Wake(Server *s) {
  uint64_t one = 1;
  if (write(s->stop, &one, sizeof(one)) < 0) {
    // The counter cannot overflow from these few writes.
  }
}

// What the thread waits on: requests and the stop event.
int WaitSet(Server *s) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return -errno;
  struct epoll_event requests = {}, stop = {};
  requests.events = EPOLLIN;
  requests.data.fd = s->fd;
  stop.events = EPOLLIN;
  stop.data.fd = s->stop;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &requests) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s->stop, &stop) < 0) {
    int err = -errno;
    close(ep);
    return err;
  }
  return ep;
}

// A request wakes this thread, and on a virtual machine waking a thread
// whose virtual CPU has halted costs a round trip through the host: tens
// of microseconds, as much as serving the request. A client's requests
// come in bursts (cp -a: seven a small file, each sent a few
// microseconds after the reply to the one before), so after a request
// the thread polls for the next one for a while before it sleeps. On the
// 2-core development VM: cp -a of an 8,207-entry, 381 MiB tree into the mount in
// 3.1-3.4 s instead of 5.2-6.0 s (50 us: 3.3-3.4 s, 200 us: 3.1 s). An
// idle mount does not poll.
constexpr auto kPollFor = std::chrono::microseconds(100);

// Waits for a request or the stop event (1), or fails (-1, errno).
int WaitForWork(int ep, struct epoll_event *ev, std::chrono::steady_clock::time_point last_request) {
  int ready;
  do {
    ready = epoll_wait(ep, ev, 1, 0);
  } while (ready == 0 && std::chrono::steady_clock::now() - last_request < kPollFor);
  return ready == 0 ? epoll_wait(ep, ev, 1, -1) : ready;
}

void Serve(Server *s) {
  long ret = PrepareFuseThread();
  int ep = ret < 0 ? -1 : WaitSet(s);
  if (ep < 0 && ret == 0) ret = ep;
  {
    std::lock_guard<std::mutex> hold(s->lock);
    s->prepared = true;
    s->prepare_error = ret;
  }
  s->changed.notify_all();
  if (ret < 0) return;
  const FuseLib *lib = s->state.lib;
  struct fuse_buf buf = {};
  auto last_request = std::chrono::steady_clock::now();
  while (!lib->fuse_session_exited(s->session)) {
    struct epoll_event ev;
    int ready = WaitForWork(ep, &ev, last_request);
    if (ready < 0 && errno != EINTR) break;
    if (ready > 0 && ev.data.fd == s->stop) break;
    int n = lib->fuse_session_receive_buf(s->session, &buf);
    if (n == -EINTR || n == -EAGAIN) continue;
    if (n <= 0) break;  // 0: unmounted
    lib->fuse_session_process_buf(s->session, &buf);
    last_request = std::chrono::steady_clock::now();
  }
  close(ep);
  free(buf.mem);
}

void ServeRequests(Server *s) {
  Serve(s);
  std::lock_guard<std::mutex> hold(s->lock);
  s->running = false;
  s->changed.notify_all();
}

// The kernel's /proc: an inode's pinned descriptor is opened again, and
// named to the calls that take paths, by its magic link. Room for many
// descriptors: one per inode the host knows on a filesystem without file
// handles.
long PrepareKernel() {
  long ret = lkl_sys_mkdirat(LKL_AT_FDCWD, "/proc", 0555);
  if (ret < 0 && ret != -LKL_EEXIST) return ret;
  struct lkl_stat st;
  if (lkl_sys_newfstatat(LKL_AT_FDCWD, "/proc/self", &st, 0) < 0) {
    ret = lkl_sys_mount(const_cast<char *>("proc"), const_cast<char *>("/proc"), const_cast<char *>("proc"), 0,
                        nullptr);
    if (ret < 0) return ret;
  }
  struct lkl_rlimit64 files = {1 << 20, 1 << 20};
  return lkl_sys_prlimit64(0, LKL_RLIMIT_NOFILE, &files, nullptr);
}

// Ends serving and closes everything: the thread joined, the host's
// files in the kernel closed, the host mount gone (lazily, if something
// still holds it: its calls then fail) and the session freed.
void Finish(Server *s) {
  if (s->thread.joinable()) s->thread.join();
  CloseFuseHandles(&s->state);
  if (s->session) {
    s->state.lib->fuse_session_unmount(s->session);
    s->state.lib->fuse_session_destroy(s->session);
  }
  if (s->stop >= 0) close(s->stop);
}

// The host reads ahead at most 128 KiB in a new FUSE mount, whatever
// max_readahead says (it takes the smaller): a large file came in 128 KiB
// requests, four times more of them (tar of the bench's tree: 12,900
// reads, 10,500 with 1 MiB). Its own read_ahead_kb is root's to raise;
// for anyone else this changes nothing.
void RaiseReadahead(dev_t dev) {
  std::string knob = "/sys/class/bdi/" + std::to_string(major(dev)) + ":" + std::to_string(minor(dev)) + "/read_ahead_kb";
  int fd = open(knob.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  std::string kib = std::to_string(kMaxTransfer / 1024);
  if (write(fd, kib.data(), kib.size()) < 0) {
    // Not allowed: the default stays.
  }
  close(fd);
}

long Start(Server *s, const std::string &root, const std::vector<std::string> &args) {
  std::string why;
  s->state.lib = LoadFuse(&why);
  if (!s->state.lib) {
    std::lock_guard<std::mutex> hold(log_lock);
    log_text += "cannot load libfuse3 (" + why + ")\n";
    return -ELIBACC;
  }
  const FuseLib *lib = s->state.lib;
  lib->fuse_set_log_func(LogFuse);
  long ret = PrepareKernel();
  if (ret < 0) return ret;
  // Opened for reading, not O_PATH: open_by_handle_at takes it as its
  // mount's descriptor.
  long rootfd = lkl_sys_openat(LKL_AT_FDCWD, root.c_str(), LKL_O_RDONLY | LKL_O_DIRECTORY | LKL_O_CLOEXEC, 0);
  if (rootfd < 0) return rootfd;
  struct lkl_stat st;
  ret = lkl_sys_newfstatat(rootfd, "", &st, LKL_AT_EMPTY_PATH);
  s->state.inodes.SetRoot(rootfd, st);
  if (ret < 0) return ret;

  struct fuse_args fargs = FUSE_ARGS_INIT(0, nullptr);
  lib->fuse_opt_add_arg(&fargs, "lklfs");
  for (auto &a : args) lib->fuse_opt_add_arg(&fargs, a.c_str());
  const struct fuse_lowlevel_ops &ops = FuseOperations(&s->state);
  s->session = lib->fuse_session_new(&fargs, &ops, sizeof(ops), nullptr);
  lib->fuse_opt_free_args(&fargs);
  if (!s->session) return -EINVAL;
  if (lib->fuse_session_mount(s->session, s->mountpoint.c_str()) != 0) {
    lib->fuse_session_destroy(s->session);
    s->session = nullptr;
    return -EIO;
  }
  KeepLog(false);
  s->fd = lib->fuse_session_fd(s->session);
  s->stop = eventfd(0, EFD_CLOEXEC);
  if (s->stop < 0 || fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK) < 0) return -errno;
  s->running = true;
  s->thread = std::thread(ServeRequests, s);
  {
    std::unique_lock<std::mutex> hold(s->lock);
    s->changed.wait(hold, [s] { return s->prepared; });
    if (s->prepare_error) return s->prepare_error;
  }
  // Served from here on (this stat is the first request).
  struct stat host;
  if (stat(s->mountpoint.c_str(), &host) < 0) return -errno;
  s->dev = host.st_dev;
  RaiseReadahead(s->dev);
  return 0;
}

Napi::Value FuseMount(const Napi::CallbackInfo &info) {
  std::string root = PathArg(info, 0), mountpoint = PathArg(info, 1);
  if (!info[2].IsArray()) throw Napi::TypeError::New(info.Env(), "argument 2 must be an array of strings");
  Napi::Array list = info[2].As<Napi::Array>();
  std::vector<std::string> args;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value arg = list.Get(i);
    if (!arg.IsString()) throw Napi::TypeError::New(info.Env(), "argument 2 must be an array of strings");
    args.push_back(arg.As<Napi::String>().Utf8Value());
  }
  return Submit(info.Env(), "mount", mountpoint, [=]() -> long {
    std::lock_guard<std::mutex> hold(server_lock);
    if (server) return -EBUSY;
    KeepLog(true);
    auto s = std::make_shared<Server>();
    s->mountpoint = mountpoint;
    long ret = Start(s.get(), root, args);
    if (ret < 0) {
      Wake(s.get());
      Finish(s.get());
      return ret;
    }
    server = s;
    return 0;
  });
}

// Waits until serving ends, then closes everything. Runs on a kernel
// thread of the binding's queue for as long as the mount lasts.
long WaitForEnd() {
  std::shared_ptr<Server> s;
  {
    std::lock_guard<std::mutex> hold(server_lock);
    s = server;
  }
  if (!s) return 0;
  {
    std::unique_lock<std::mutex> hold(s->lock);
    s->changed.wait(hold, [&] { return !s->running; });
  }
  // Whoever comes first (JS's wait, or the exit) finishes.
  std::lock_guard<std::mutex> hold(server_lock);
  if (server == s) {
    server = nullptr;
    Finish(s.get());
  }
  return 0;
}

Napi::Value FuseWait(const Napi::CallbackInfo &info) { return Submit(info.Env(), "fuse", "", WaitForEnd); }

// What the host holds in its cache is sent to us first (while the thread
// still serves: the pages of shared writable maps), then the thread stops.
long StopServing() {
  std::lock_guard<std::mutex> hold(server_lock);
  if (!server) return 0;
  struct stat host;
  if (stat(server->mountpoint.c_str(), &host) == 0 && host.st_dev == server->dev) {
    int fd = open(server->mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      syncfs(fd);
      close(fd);
    }
  }
  Wake(server.get());
  return 0;
}

Napi::Value FuseStop(const Napi::CallbackInfo &info) { return Submit(info.Env(), "fuse", "", StopServing); }

Napi::Value FuseLog(const Napi::CallbackInfo &info) {
  std::lock_guard<std::mutex> hold(log_lock);
  Napi::String text = Napi::String::New(info.Env(), log_text);
  log_text.clear();
  return text;
}

}  // namespace

void FuseShutdown() {
  StopServing();
  WaitForEnd();
}

void RegisterFuse(Napi::Env env, Napi::Object exports) {
  exports.Set("fuseMount", Napi::Function::New(env, FuseMount, "fuseMount"));
  exports.Set("fuseWait", Napi::Function::New(env, FuseWait, "fuseWait"));
  exports.Set("fuseStop", Napi::Function::New(env, FuseStop, "fuseStop"));
  exports.Set("fuseLog", Napi::Function::New(env, FuseLog, "fuseLog"));
}

}  // namespace lklfs
