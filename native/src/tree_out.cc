// SPDX-License-Identifier: GPL-2.0
// new TreeCopyOut(roots, options): trees in the kernel copied to the host
// as cp -a copies them, with no trip per entry. Each step() is one trip to
// a kernel thread that walks the image (getdents64, each directory's names
// in byte order, so that copies come out the same every time) and makes
// the next few thousand entries on the host: directories (their metadata
// after their contents, which would change their times), files (data
// extents only, holes kept: copy.cc), symlinks, hard links (by the image's
// dev:ino), fifos and device nodes; owner, mode, extended attributes and
// nanosecond times. Host entries are made by name in their open parent
// directory, image entries read by name in theirs. Small files are
// written behind the walk (HostWriter): the kernel reads the next files
// while a thread of its own writes these on the host.
//
// The walk holds the names of the directories it is in and the first host
// name of each image file with several links: nothing else grows with the
// tree. Small files' data waits in one ring of kRing bytes; bigger files
// go through copy.cc (a 1 MiB buffer, its pipeline of four from 8 MiB).
//
// The engine (src/engine/copy-out.ts) keeps the decisions: a step stops at
// an entry it cannot create or a call that fails, and the next
// step(resume) says what to do with that entry ("retry" once the way is
// cleared, "merge" into the directory already there, "skip" it).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "kernel_api.h"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "args.h"
#include "copy.h"
#include "copy_job.h"
#include "exports.h"
#include "queue.h"
#include "xattrs.h"

namespace lklfs {
namespace {

// A step's size: how long progress and an abort wait, at most.
constexpr size_t kStepEntries = 4096;
constexpr int64_t kStepBytes = 64 << 20;

constexpr long kCwd = LKL_AT_FDCWD;
constexpr long kNoFollow = LKL_AT_SYMLINK_NOFOLLOW;

// Metadata the host did not take: "owner", "mode", ...; seq: its entry's
// place in the walk, so that warnings from both threads come in walk order.
struct Warning {
  size_t seq;
  std::string what, path;
  long err;
};

// What made the copy fail: the call, its error and path.
struct Failed {
  long err = 0;
  const char *syscall = nullptr;
  std::string path;
};

// An entry left out (a socket; a device node when not root): its mode
// and kernel path, for the engine's one line per kind.
struct Skipped {
  unsigned mode;
  std::string path;
};

struct StepResult {
  Totals totals;
  std::vector<Warning> warnings;
  std::vector<Skipped> skipped;
  bool done = false;
  // Where it stopped: the call, its error and path (a host path, or a
  // kernel one for what failed reading the image); create: the call
  // that makes the entry, whose source (kernel path) has mode.
  const char *syscall = nullptr;
  long err = 0;
  std::string path, source;
  bool create = false;
  unsigned mode = 0;
};

struct Options {
  long uid = -1, gid = -1;  // -1: the image's (as root) or the host's default
  bool xattrs = true;
  // Running as root: owners, device nodes and privileged attributes too.
  bool root = false;
};

struct Root {
  std::string kernel, host;
};

long Host(long ret) { return ret < 0 ? -errno : ret; }

std::string Join(const std::string &dir, const std::string &name) {
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

unsigned Type(const struct lkl_stat &st) { return st.st_mode & LKL_S_IFMT; }

// Not root, only what a file's owner may set: user attributes and ACLs;
// security.* and trusted.* are left out silently, as cp -a leaves them.
bool Wanted(const std::string &name, bool root) {
  if (!FileOwn(name)) return false;
  return root || name.rfind("user.", 0) == 0 || name.rfind("system.posix_acl_", 0) == 0;
}

// Owner first (it clears set-id bits), then mode, then extended
// attributes (a chown drops security.capability), times last: through
// hfd, or by name in directory hat for what has none open (symlinks,
// nodes). What the host will not take is a warning, not a failed copy.
bool SetMetadata(const Options &opts, int hfd, int hat, const char *hname, const std::string &host,
                 const struct lkl_stat &st, const Xattrs &xattrs, size_t seq, std::vector<Warning> *warnings,
                 Failed *failed) {
  auto kept = [&](long ret, std::string what, const char *syscall, bool owner = false) {
    if (ret >= 0) return true;
    if (ret != -EPERM && ret != -EOPNOTSUPP && !(owner && ret == -EINVAL)) {
      *failed = {ret, syscall, host};
      return false;
    }
    warnings->push_back({seq, std::move(what), host, ret});
    return true;
  };
  long uid = opts.uid, gid = opts.gid, ret;
  if (opts.root) {
    uid = uid >= 0 ? uid : static_cast<long>(st.st_uid);
    gid = gid >= 0 ? gid : static_cast<long>(st.st_gid);
  }
  if (uid >= 0 || gid >= 0) {
    ret = Host(hfd >= 0 ? fchown(hfd, uid, gid) : fchownat(hat, hname, uid, gid, AT_SYMLINK_NOFOLLOW));
    if (!kept(ret, "owner", "lchown", true)) return false;
  }
  if (Type(st) != LKL_S_IFLNK) {
    mode_t mode = st.st_mode & 07777;
    ret = Host(hfd >= 0 ? fchmod(hfd, mode) : fchmodat(hat, hname, mode, 0));
    if (!kept(ret, "mode", "chmod")) return false;
  }
  for (auto &x : xattrs) {
    const char *n = x.first.c_str();
    ret = Host(hfd >= 0 ? fsetxattr(hfd, n, x.second.data(), x.second.size(), 0)
                        : lsetxattr(host.c_str(), n, x.second.data(), x.second.size(), 0));
    if (!kept(ret, "extended attribute " + x.first, "lsetxattr")) return false;
  }
  struct timespec ts[2] = {{static_cast<time_t>(st.lkl_st_atime), static_cast<long>(st.st_atime_nsec)},
                           {static_cast<time_t>(st.lkl_st_mtime), static_cast<long>(st.st_mtime_nsec)}};
  ret = Host(hfd >= 0 ? futimens(hfd, ts) : utimensat(hat, hname, ts, AT_SYMLINK_NOFOLLOW));
  return kept(ret, "timestamps", "utimensat");
}

// Files with up to kBehindMax bytes of data are written behind the walk:
// their data and attributes read on the kernel thread, the host's writes
// and metadata done by a thread of its own meanwhile. Their data waits in
// one ring of kRing bytes, taken and given back in queue order; at most
// kBehindFiles files wait.
constexpr int64_t kBehindMax = 2 << 20;
constexpr size_t kRing = 8 << 20;
constexpr size_t kBehindFiles = 1024;

// A file created on the host (hfd), its data read out of the image into
// the ring, up to ring_end (in bytes ever taken).
struct Behind {
  int hfd;
  std::string host;
  struct lkl_stat st;
  Xattrs xattrs;
  std::vector<Piece> pieces;
  const char *data;
  uint64_t ring_end;
  size_t seq;
};

class HostWriter {
 public:
  explicit HostWriter(const Options &opts) : opts_(opts), ring_(new char[kRing]), thread_([this] { Run(); }) {}

  ~HostWriter() {
    {
      std::lock_guard<std::mutex> hold(lock_);
      stop_ = true;
    }
    moved_.notify_all();
    thread_.join();
    for (auto &b : queue_) close(b.hfd);
  }

  // length (at most kBehindMax) contiguous bytes of the ring, once the
  // files before have given them back; *end: where they end, in bytes
  // ever taken (a gap left at the ring's end included).
  char *Take(size_t length, uint64_t *end) {
    std::unique_lock<std::mutex> hold(lock_);
    size_t at = taken_ % kRing;
    uint64_t start = at + length > kRing ? taken_ + (kRing - at) : taken_;
    *end = start + length;
    moved_.wait(hold, [&] { return *end - given_ <= kRing; });
    taken_ = *end;
    return ring_.get() + start % kRing;
  }

  // Waits for room in the queue.
  void Push(Behind b) {
    std::unique_lock<std::mutex> hold(lock_);
    moved_.wait(hold, [&] { return queue_.size() < kBehindFiles; });
    queue_.push_back(std::move(b));
    moved_.notify_all();
  }

  bool Failing() {
    std::lock_guard<std::mutex> hold(lock_);
    return failed_.syscall != nullptr;
  }

  // Waits until every file pushed is written and closed; hands over
  // their warnings and the first failure.
  void Drain(std::vector<Warning> *warnings, Failed *failed) {
    std::unique_lock<std::mutex> hold(lock_);
    moved_.wait(hold, [&] { return queue_.empty() && !busy_; });
    for (auto &w : warnings_) warnings->push_back(std::move(w));
    warnings_.clear();
    if (failed_.syscall) *failed = failed_;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> hold(lock_);
    for (;;) {
      moved_.wait(hold, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      Behind b = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      // After a failure, files are only closed: the copy is over.
      bool write = !failed_.syscall;
      hold.unlock();
      std::vector<Warning> warnings;
      Failed failed;
      if (write) Write(b, &warnings, &failed);
      if (close(b.hfd) < 0 && write && !failed.syscall) failed = {-errno, "close", b.host};
      hold.lock();
      given_ = b.ring_end;
      busy_ = false;
      for (auto &w : warnings) warnings_.push_back(std::move(w));
      if (failed.syscall && !failed_.syscall) failed_ = failed;
      moved_.notify_all();
    }
  }

  void Write(const Behind &b, std::vector<Warning> *warnings, Failed *failed) {
    int64_t at = 0;
    for (const Piece &p : b.pieces) {
      long ret = WriteHostPiece(b.hfd, b.data + at, p);
      if (ret < 0) {
        *failed = {ret, "write", b.host};
        return;
      }
      at += p.len;
    }
    // A trailing hole sets the size.
    if (ftruncate(b.hfd, b.st.st_size) < 0) {
      *failed = {-errno, "ftruncate", b.host};
      return;
    }
    SetMetadata(opts_, b.hfd, -1, nullptr, b.host, b.st, b.xattrs, b.seq, warnings, failed);
  }

  const Options opts_;
  std::mutex lock_;
  std::condition_variable moved_;
  std::deque<Behind> queue_;
  std::unique_ptr<char[]> ring_;
  uint64_t taken_ = 0, given_ = 0;
  bool busy_ = false, stop_ = false;
  std::vector<Warning> warnings_;
  Failed failed_;
  std::thread thread_;
};

class Walker {
 public:
  Walker(std::vector<Root> roots, Options opts)
      : roots_(std::move(roots)), opts_(opts), writer_(std::make_unique<HostWriter>(opts)) {}

  void Step(Resume resume, StepResult *r) {
    size_t entries = 0;
    int64_t bytes = 0;
    while (entries < kStepEntries && bytes < kStepBytes) {
      if (dirs_.empty() && next_root_ == roots_.size()) {
        r->done = true;
        break;
      }
      if (Cancelled()) {
        Stop(r, -LKL_ECANCELED, "copy", dirs_.empty() ? roots_[next_root_].host : dirs_.back().host);
        break;
      }
      // Stopped: the entry stays next, for the next step's resume.
      if (!Next(resume, r, &bytes) || writer_->Failing()) break;
      resume = Resume::None;
      entries++;
    }
    // Nothing is left waiting between steps: the engine may clear the
    // way on the host, and a failure behind the walk ends the copy.
    Failed failed;
    writer_->Drain(&r->warnings, &failed);
    std::stable_sort(r->warnings.begin(), r->warnings.end(),
                     [](const Warning &a, const Warning &b) { return a.seq < b.seq; });
    if (failed.syscall) {
      r->create = false;
      Stop(r, failed.err, failed.syscall, failed.path);
    }
    r->totals = totals_;
  }

  // What is still open (a copy that stopped or failed).
  void Close() {
    for (auto &d : dirs_) {
      lkl_sys_close(d.kfd);
      close(d.hfd);
    }
    dirs_.clear();
  }

 private:
  // A directory being copied: open in the kernel and on the host, its
  // names and the next one to copy.
  struct Dir {
    long kfd;
    int hfd;
    std::string kernel, host;
    struct lkl_stat st;
    std::vector<std::string> names;
    size_t next = 0;
  };

  // Where the next entry is: its parents' descriptors and its paths.
  struct Place {
    long kat;
    int hat;
    const char *name;
    std::string kernel, host;
  };

  bool Stop(StepResult *r, long err, const char *syscall, const std::string &path, bool create = false,
            const std::string &source = {}, unsigned mode = 0) {
    r->err = err;
    r->syscall = syscall;
    r->path = path;
    r->create = create;
    r->source = source;
    r->mode = mode;
    return false;
  }

  // The entry after the one just done.
  void Advance() {
    if (dirs_.empty())
      next_root_++;
    else
      dirs_.back().next++;
  }

  // The next entry, or the end of the directory entered last; false:
  // stopped (r says where).
  bool Next(Resume resume, StepResult *r, int64_t *bytes) {
    if (!dirs_.empty() && dirs_.back().next == dirs_.back().names.size()) return Leave(r);
    Place at;
    if (dirs_.empty()) {
      const Root &root = roots_[next_root_];
      at = {kCwd, AT_FDCWD, root.kernel.c_str(), root.kernel, root.host};
    } else {
      const Dir &d = dirs_.back();
      const std::string &name = d.names[d.next];
      at = {d.kfd, d.hfd, name.c_str(), Join(d.kernel, name), Join(d.host, name)};
    }
    // A root's name is its whole path, on both sides.
    const char *hname = dirs_.empty() ? at.host.c_str() : at.name;
    seq_++;
    struct lkl_stat st;
    long ret = lkl_sys_newfstatat(at.kat, at.name, &st, kNoFollow);
    if (ret < 0) return Stop(r, ret, "lstat", at.kernel);
    unsigned type = Type(st);
    bool device = type == LKL_S_IFCHR || type == LKL_S_IFBLK;
    // Left out before anything on the host is replaced: it keeps what it had.
    // A cp -a of a socket would have nobody listening on it.
    if (type == LKL_S_IFSOCK || (device && !opts_.root)) {
      r->skipped.push_back({st.st_mode, at.kernel});
      Advance();
      return true;
    }
    // Refused by the host (the engine said so when the step stopped).
    if (resume == Resume::Skip) {
      Advance();
      return true;
    }
    if (type == LKL_S_IFDIR) return Enter(at, hname, st, resume, r);
    auto create = [&](long err, const char *syscall) { return Stop(r, err, syscall, at.host, true, at.kernel, st.st_mode); };
    std::pair<uint64_t, uint64_t> key{st.st_dev, st.st_ino};
    if (st.st_nlink > 1) {
      auto first = links_.find(key);
      if (first != links_.end()) {
        // The same source given twice: nothing to do.
        if (first->second != at.host) {
          if ((ret = Host(linkat(AT_FDCWD, first->second.c_str(), at.hat, hname, 0))) < 0) return create(ret, "link");
          totals_.entries++;
          totals_.hardlinks++;
        }
        Advance();
        return true;
      }
    }
    switch (type) {
      case LKL_S_IFREG:
        if (!CopyFile(at, hname, st, r)) return false;
        *bytes += st.st_size;
        break;
      case LKL_S_IFLNK: {
        std::string target(4096, '\0');
        ret = lkl_sys_readlinkat(at.kat, at.name, target.data(), target.size());
        if (ret < 0) return Stop(r, ret, "readlink", at.kernel);
        target.resize(ret);
        if ((ret = Host(symlinkat(target.c_str(), at.hat, hname))) < 0) return create(ret, "symlink");
        if (!Metadata(-1, -1, at, hname, st, r)) return false;
        break;
      }
      default:  // fifos, device nodes
        ret = Host(mknodat(at.hat, hname, st.st_mode, makedev(DevMajor(st.st_rdev), DevMinor(st.st_rdev))));
        if (ret < 0) return create(ret, "mknod");
        if (!Metadata(-1, -1, at, hname, st, r)) return false;
    }
    if (st.st_nlink > 1) links_.emplace(key, at.host);
    totals_.entries++;
    Advance();
    return true;
  }

  // A directory made (or merged into) on the host and entered: its names
  // read, its metadata left for Leave.
  bool Enter(const Place &at, const char *hname, const struct lkl_stat &st, Resume resume, StepResult *r) {
    long ret;
    // 0700 until its contents are in: its own mode may not let us write.
    if (resume != Resume::Merge && (ret = Host(mkdirat(at.hat, hname, 0700))) < 0)
      return Stop(r, ret, "mkdir", at.host, true, at.kernel, st.st_mode);
    int hfd = openat(at.hat, hname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (hfd < 0) return Stop(r, -errno, "open", at.host);
    long kfd = lkl_sys_openat(at.kat, at.name, LKL_O_RDONLY | LKL_O_DIRECTORY | LKL_O_NOFOLLOW | LKL_O_CLOEXEC, 0);
    if (kfd < 0) {
      close(hfd);
      return Stop(r, kfd, "open", at.kernel);
    }
    Dir d{kfd, hfd, at.kernel, at.host, st, {}, 0};
    if ((ret = ReadNames(kfd, &d.names)) < 0) {
      lkl_sys_close(kfd);
      close(hfd);
      return Stop(r, ret, "getdents64", at.kernel);
    }
    totals_.entries++;
    Advance();
    dirs_.push_back(std::move(d));
    return true;
  }

  static long ReadNames(long fd, std::vector<std::string> *names) {
    std::vector<char> buf(64 * 1024);
    long n;
    while ((n = lkl_sys_getdents64(fd, reinterpret_cast<struct lkl_linux_dirent64 *>(buf.data()), buf.size())) > 0) {
      for (long at = 0; at < n;) {
        auto *de = reinterpret_cast<struct lkl_linux_dirent64 *>(buf.data() + at);
        at += de->d_reclen;
        std::string name(de->d_name);
        if (name != "." && name != "..") names->push_back(std::move(name));
      }
    }
    std::sort(names->begin(), names->end());
    return n;
  }

  // The directory entered last is done: its metadata, now that its
  // contents no longer change its times.
  bool Leave(StepResult *r) {
    seq_++;  // its warnings after its contents'
    Dir &d = dirs_.back();
    // Its place as seen from its parent, for the calls that go by name.
    Place at{kCwd, AT_FDCWD, nullptr, d.kernel, d.host};
    if (!Metadata(d.hfd, d.kfd, at, d.host.c_str(), d.st, r)) return false;
    lkl_sys_close(d.kfd);
    close(d.hfd);
    dirs_.pop_back();
    return true;
  }

  bool CopyFile(const Place &at, const char *hname, const struct lkl_stat &st, StepResult *r) {
    long in = lkl_sys_openat(at.kat, at.name, LKL_O_RDONLY | LKL_O_NOFOLLOW | LKL_O_CLOEXEC, 0);
    if (in < 0) return Stop(r, in, "open", at.kernel);
    // 0600 until its metadata is set, as cp -a does.
    int out = openat(at.hat, hname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
      long err = -errno;
      lkl_sys_close(in);
      return Stop(r, err, "open", at.host, true, at.kernel, st.st_mode);
    }
    if (st.st_size <= kBehindMax) return WriteBehind(in, out, at, st, r);
    Failure failure;
    long ret = CopyDataOut(in, out, st.st_size, &failure, at.kernel, at.host);
    bool ok = ret < 0 ? Stop(r, ret, failure.syscall, failure.path) : Metadata(out, in, at, hname, st, r);
    DropCache(in, 0, 0);
    lkl_sys_close(in);
    if (close(out) < 0 && ok) ok = Stop(r, -errno, "close", at.host);
    if (!ok) return false;
    totals_.files++;
    totals_.bytes += st.st_size;
    return true;
  }

  // A small file's data and attributes read now, in pieces (holes left
  // out), for the host writer to write into out and close.
  bool WriteBehind(long in, int out, const Place &at, const struct lkl_stat &st, StepResult *r) {
    Behind b{out, at.host, st, {}, KernelPieces(in, st.st_size), nullptr, 0, seq_};
    size_t length = 0;
    for (const Piece &p : b.pieces) length += p.len;
    char *data = writer_->Take(length, &b.ring_end);
    b.data = data;
    long ret = 0;
    const char *syscall = "read";
    for (const Piece &p : b.pieces) {
      if ((ret = ReadKernelPiece(in, data, p)) < 0) break;
      data += p.len;
    }
    if (ret >= 0 && opts_.xattrs) {
      ret = WantedXattrs(in, at.kernel, &b.xattrs);
      syscall = "llistxattr";
    }
    DropCache(in, 0, 0);
    lkl_sys_close(in);
    if (ret < 0) {
      close(out);
      return Stop(r, ret, syscall, at.kernel);
    }
    writer_->Push(std::move(b));
    totals_.files++;
    totals_.bytes += st.st_size;
    return true;
  }

  // The entry's metadata onto the host (see SetMetadata), its attributes
  // read through kfd, or by kernel path.
  bool Metadata(int hfd, long kfd, const Place &at, const char *hname, const struct lkl_stat &st, StepResult *r) {
    Xattrs xattrs;
    long ret = opts_.xattrs ? WantedXattrs(kfd, at.kernel, &xattrs) : 0;
    if (ret < 0) return Stop(r, ret, "llistxattr", at.kernel);
    Failed failed;
    if (SetMetadata(opts_, hfd, at.hat, hname, at.host, st, xattrs, seq_, &r->warnings, &failed)) return true;
    return Stop(r, failed.err, failed.syscall, failed.path);
  }

  // The attributes the host gets (see Wanted).
  long WantedXattrs(long kfd, const std::string &path, Xattrs *out) {
    long ret = ReadXattrs(kfd, path, out);
    out->erase(std::remove_if(out->begin(), out->end(), [&](const auto &x) { return !Wanted(x.first, opts_.root); }),
               out->end());
    return ret;
  }

  static long ReadXattrs(long kfd, const std::string &path, Xattrs *out) {
    if (kfd >= 0)
      return CollectXattrs([&](char *buf, size_t len) { return lkl_sys_flistxattr(kfd, buf, len); },
                           [&](const char *name, char *buf, size_t len) { return lkl_sys_fgetxattr(kfd, name, buf, len); },
                           out);
    return CollectXattrs([&](char *buf, size_t len) { return lkl_sys_llistxattr(path.c_str(), buf, len); },
                         [&](const char *name, char *buf, size_t len) {
                           return lkl_sys_lgetxattr(path.c_str(), name, buf, len);
                         },
                         out);
  }

  std::vector<Root> roots_;
  size_t next_root_ = 0;
  Options opts_;
  Totals totals_;
  std::vector<Dir> dirs_;
  // Entries visited, for the order of warnings.
  size_t seq_ = 0;
  std::unique_ptr<HostWriter> writer_;
  // Image files with several links, by dev:ino: their first host path.
  std::map<std::pair<uint64_t, uint64_t>, std::string> links_;
};

struct Job {
  Walker walker;
  bool busy = false;  // JS thread only: a step or close in flight
};

Napi::Object ResultObject(Napi::Env env, const StepResult &r) {
  auto buffer = [&](const std::string &s) { return Napi::Buffer<char>::Copy(env, s.data(), s.size()); };
  Napi::Object o = Napi::Object::New(env);
  o.Set("totals", TotalsObject(env, r.totals));
  o.Set("warnings", WarningsArray(env, r.warnings));
  Napi::Array skipped = Napi::Array::New(env, r.skipped.size());
  for (size_t i = 0; i < r.skipped.size(); i++) {
    Napi::Array s = Napi::Array::New(env, 2);
    s.Set(0u, Napi::Number::New(env, r.skipped[i].mode));
    s.Set(1u, buffer(r.skipped[i].path));
    skipped.Set(i, s);
  }
  o.Set("skipped", skipped);
  o.Set("done", r.done);
  if (r.syscall) {
    Napi::Object stop = Napi::Object::New(env);
    stop.Set("errno", Napi::Number::New(env, r.err));
    stop.Set("syscall", r.syscall);
    stop.Set("path", buffer(r.path));
    stop.Set("create", r.create);
    stop.Set("source", buffer(r.source));
    stop.Set("mode", Napi::Number::New(env, r.mode));
    o.Set("stop", stop);
  }
  return o;
}

class TreeCopyOut : public Napi::ObjectWrap<TreeCopyOut> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TreeCopyOut",
                       {InstanceMethod<&TreeCopyOut::Step>("step"), InstanceMethod<&TreeCopyOut::Close>("close")});
  }

  // roots: [[kernelPath, hostPath], ...]; options: { uid, gid (-1: none
  // given), xattrs, root }.
  explicit TreeCopyOut(const Napi::CallbackInfo &info) : Napi::ObjectWrap<TreeCopyOut>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray() || !info[1].IsObject())
      throw Napi::TypeError::New(env, "TreeCopyOut takes an array of [kernelPath, hostPath] and options");
    auto list = info[0].As<Napi::Array>();
    std::vector<Root> roots;
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value pair = list.Get(i);
      if (!pair.IsArray() || pair.As<Napi::Array>().Length() != 2)
        throw Napi::TypeError::New(env, "each root must be [kernelPath, hostPath]");
      auto p = pair.As<Napi::Array>();
      roots.push_back({PathValue(env, p.Get(0u), "a root's kernel path"), PathValue(env, p.Get(1u), "a root's host path")});
    }
    auto o = info[1].As<Napi::Object>();
    Options opts;
    opts.uid = o.Get("uid").ToNumber().Int64Value();
    opts.gid = o.Get("gid").ToNumber().Int64Value();
    opts.xattrs = o.Get("xattrs").ToBoolean().Value();
    opts.root = o.Get("root").ToBoolean().Value();
    job_ = std::make_shared<Job>(Job{Walker(std::move(roots), opts)});
  }

 private:
  // step(resume?) -> { totals, warnings: [[what, hostPath, errno]],
  // skipped: [[mode, kernelPath]], done, stop? }: the next entries copied;
  // resume is what to do with the entry the last step stopped at.
  Napi::Value Step(const Napi::CallbackInfo &info) {
    Resume resume = ResumeValue(info.Env(), info[0], "resume");
    auto r = std::make_shared<StepResult>();
    return RunCopyJob<Job>(
        info.Env(), "TreeCopyOut", "copy", job_, [resume, r](Job &job) { job.walker.Step(resume, r.get()); },
        [r](Napi::Env env) { return ResultObject(env, *r); });
  }

  // close(): what is still open closed. Always called.
  Napi::Value Close(const Napi::CallbackInfo &info) {
    return RunCopyJob<Job>(
        info.Env(), "TreeCopyOut", "close", job_, [](Job &job) { job.walker.Close(); },
        [](Napi::Env env) { return env.Undefined(); });
  }

  std::shared_ptr<Job> job_;
};

}  // namespace

void RegisterTreeCopyOut(Napi::Env env, Napi::Object exports) {
  exports.Set("TreeCopyOut", TreeCopyOut::Define(env));
}

}  // namespace lklfs
