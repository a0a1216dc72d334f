// SPDX-License-Identifier: GPL-2.0
// new TreeCopyIn(roots, options): host trees copied into the kernel as
// cp -a copies them, with no trip per entry. A thread of its own walks
// the host and reads ahead (tree_reader.cc); each step() is one trip to a
// kernel thread that creates the next few thousand entries, data and
// metadata included: directories, files written from what was read
// ahead, symlinks, hard links, device nodes, each with owner, mode,
// extended attributes and times, through the descriptor just created or
// by name in its open directory, never by a whole path.
//
// The engine keeps the decisions: a step stops at an entry it cannot
// create or a call that fails, and the next step(resume) says what to do
// with that entry ("retry" once the way is cleared or the filesystem
// grown, "merge" into the directory already there, "skip" it).
//
// A step that stops leaves nothing open in the kernel, so that the engine
// may unmount the filesystem in between (cptofs --grow does, on ENOSPC);
// the next step opens again by path what it was in. A retry goes on from
// the call that failed: an entry already created by the stopped step is
// opened, not created again, and what was already written of a file
// stays (the filesystem was unmounted cleanly, so it is on the disk):
// its pieces that have left the read-ahead ring are not needed again.
#include "kernel_api.h"

#include <sys/sysmacros.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "copy.h"
#include "copy_job.h"
#include "exports.h"
#include "tree_reader.h"

namespace lklfs {
namespace {

// A step's size: how long progress and an abort wait, at most.
constexpr size_t kStepEntries = 4096;
constexpr int64_t kStepBytes = 64 << 20;

constexpr long kCwd = LKL_AT_FDCWD;
constexpr long kNoFollow = LKL_AT_SYMLINK_NOFOLLOW;

// Metadata a filesystem did not take: "owner", "mode", ...
struct Warning {
  const char *what;
  std::string path;
  long err;
};

// What one step did.
struct StepResult {
  Totals totals;
  std::vector<Warning> warnings;
  std::vector<std::string> created;
  bool done = false;
  // Entries of the queue done (an entry's data pieces count).
  size_t taken = 0;
  // Where it stopped: the call, its error and path; create: the call
  // that creates the entry (whose source has mode); host: a failure on
  // the host side (path is a host path); bytes: what the entry being
  // copied takes on the host (for growing a full filesystem).
  const char *syscall = nullptr;
  long err = 0;
  std::string path;
  bool create = false;
  bool host = false;
  unsigned mode = 0;
  int64_t bytes = 0;
};

struct Options {
  long uid = -1, gid = -1;  // -1: the source's
  bool xattrs = true;
  // security.selinux for every entry, instead of the source's.
  bool label = false;
  std::string selinux;
  bool list_created = false;
};

struct __lkl__kernel_timespec KernelTime(const struct timespec &t) {
  struct __lkl__kernel_timespec k;
  k.tv_sec = t.tv_sec;
  k.tv_nsec = t.tv_nsec;
  return k;
}

// The kernel side of one copy: the directories it is in, open (or, after
// a stop, their paths).
class Writer {
 public:
  explicit Writer(Options opts) : opts_(std::move(opts)) {}

  void Step(TreeReader *reader, Resume resume, StepResult *r) {
    size_t entries = 0;
    int64_t bytes = 0;
    while (entries < kStepEntries && bytes < kStepBytes) {
      TreeEntry *e = reader->Front();
      if (!e) {
        r->done = true;
        break;
      }
      if (Cancelled()) {
        Stop(r, -LKL_ECANCELED, "copy", e->name);
        break;
      }
      size_t length = e->length;  // Apply may take the entry's parts
      // Stopped: the entry stays first, for the next step's resume.
      if (!Apply(*e, resume, r)) {
        r->bytes = HostBytes(*e);
        Release();
        break;
      }
      resume = Resume::None;
      made_ = false;
      entries++;
      bytes += length;
      reader->Pop();
    }
    r->taken = entries;
    r->totals = totals_;
  }

  // What is still open (a copy that stopped or failed).
  void Close() {
    Release();
    dirs_.clear();
  }

 private:
  // A directory or a file being written, and its entry, for its metadata.
  struct Open {
    long fd;
    std::string path;
    TreeEntry entry;
  };

  bool Stop(StepResult *r, long err, const char *syscall, const std::string &path, bool create = false,
            unsigned mode = 0) {
    r->err = err;
    r->syscall = syscall;
    r->path = path;
    r->create = create;
    r->mode = mode;
    return false;
  }

  // Descriptors closed, paths kept: see the top of this file.
  void Release() {
    if (file_.fd >= 0) lkl_sys_close(file_.fd);
    file_.fd = -1;
    for (auto &d : dirs_) {
      if (d.fd >= 0) lkl_sys_close(d.fd);
      d.fd = -1;
    }
  }

  // o's descriptor, opened again by path after a stop; false: stopped.
  bool Reopen(Open &o, long flags, StepResult *r) {
    if (o.fd < 0) o.fd = lkl_sys_openat(kCwd, o.path.c_str(), flags | LKL_O_NOFOLLOW | LKL_O_CLOEXEC, 0);
    return o.fd >= 0 || Stop(r, o.fd, "open", o.path);
  }

  bool ReopenDir(StepResult *r) { return Reopen(dirs_.back(), LKL_O_RDONLY | LKL_O_DIRECTORY, r); }
  bool ReopenFile(StepResult *r) { return Reopen(file_, LKL_O_WRONLY, r); }

  // What e's source takes on the host: for a piece or a file's end, the
  // whole file's.
  int64_t HostBytes(const TreeEntry &e) const {
    bool in_file = e.kind == TreeEntry::Piece || e.kind == TreeEntry::FileEnd;
    return (in_file ? file_.entry.st.st_blocks : e.st.st_blocks) * 512;
  }

  // One entry; false: stopped (r says where).
  bool Apply(TreeEntry &e, Resume resume, StepResult *r) {
    if (e.kind == TreeEntry::Failed) {
      r->host = true;
      return Stop(r, e.err, e.syscall, e.host);
    }
    if (e.kind == TreeEntry::Leave) {
      if (!ReopenDir(r)) return false;
      Open &d = dirs_.back();
      if (!Metadata(d.fd, kCwd, d.entry, d.path, r)) return false;
      lkl_sys_close(d.fd);
      dirs_.pop_back();
      return true;
    }
    if (e.kind == TreeEntry::Piece) return ReopenFile(r) && Write(e, r);
    if (e.kind == TreeEntry::FileEnd) {
      if (!ReopenFile(r)) return false;
      long ret = lkl_sys_ftruncate(file_.fd, e.offset);  // a trailing hole sets the size
      return ret >= 0 ? EndFile(file_.entry, r) : Stop(r, ret, "ftruncate", file_.path);
    }
    // A refused entry left out (never a directory: its contents follow).
    if (resume == Resume::Skip) return true;
    bool top = e.root || dirs_.empty();
    if (!top && !ReopenDir(r)) return false;
    long at = top ? kCwd : dirs_.back().fd;
    std::string path = top ? e.name : Join(dirs_.back().path, e.name);
    const char *name = e.name.c_str();
    unsigned mode = e.st.st_mode;
    // Created by the step that stopped at it: done again from there.
    bool create = !made_;
    long ret;
    switch (e.kind) {
      case TreeEntry::Dir: {
        if (create && resume != Resume::Merge && (ret = lkl_sys_mkdirat(at, name, mode & 0777)) < 0)
          return Stop(r, ret, "mkdir", path, true, mode);
        made_ = true;
        long fd = lkl_sys_openat(at, name, LKL_O_RDONLY | LKL_O_DIRECTORY | LKL_O_NOFOLLOW | LKL_O_CLOEXEC, 0);
        if (fd < 0) return Stop(r, fd, "open", path);
        Created(path, r);
        dirs_.push_back({fd, std::move(path), std::move(e)});
        return true;
      }
      case TreeEntry::File: {
        long flags = LKL_O_WRONLY | LKL_O_NOFOLLOW | LKL_O_CLOEXEC | (create ? LKL_O_CREAT | LKL_O_EXCL : 0);
        long fd = lkl_sys_openat(at, name, flags, mode & 0777);
        if (fd < 0) return Stop(r, fd, "open", path, create, mode);
        made_ = true;
        file_.fd = fd;
        file_.path = std::move(path);
        // Its data in pieces, then its end: the file stays open till
        // then, and the entry is taken now.
        if (e.pieces) {
          file_.entry = std::move(e);
          return true;
        }
        return Write(e, r) && EndFile(e, r);
      }
      case TreeEntry::Symlink:
        if (create && (ret = lkl_sys_symlinkat(e.target.c_str(), at, name)) < 0)
          return Stop(r, ret, "symlink", path, true, mode);
        made_ = true;
        if (!Metadata(-1, at, e, path, r)) return false;
        break;
      case TreeEntry::Link:
        if ((ret = lkl_sys_linkat(kCwd, e.target.c_str(), at, name, 0)) < 0) return Stop(r, ret, "link", path, true, mode);
        totals_.files++;
        totals_.hardlinks++;
        break;
      default: {  // device nodes, fifos, sockets
        // The kernel's new_encode_dev() layout.
        unsigned long major = major(e.st.st_rdev), minor = minor(e.st.st_rdev);
        unsigned long dev = (minor & 0xff) | (major << 8) | ((minor & ~0xffUL) << 12);
        if (create && (ret = lkl_sys_mknodat(at, name, mode, dev)) < 0) return Stop(r, ret, "mknod", path, true, mode);
        made_ = true;
        if (!Metadata(-1, at, e, path, r)) return false;
      }
    }
    Created(path, r);
    return true;
  }

  static std::string Join(const std::string &dir, const std::string &name) {
    return dir.back() == '/' ? dir + name : dir + "/" + name;
  }

  void Created(const std::string &path, StepResult *r) {
    totals_.entries++;
    if (opts_.list_created) r->created.push_back(path);
  }

  // Data read ahead, into the file being written.
  bool Write(const TreeEntry &e, StepResult *r) {
    for (size_t put = 0; put < e.length;) {
      long n = lkl_sys_pwrite64(file_.fd, e.data + put, e.length - put, e.offset + put);
      if (n < 0) return Stop(r, n, "write", file_.path);
      put += n;
    }
    return true;
  }

  // The file being written gets e's metadata and is closed.
  bool EndFile(const TreeEntry &e, StepResult *r) {
    if (!Metadata(file_.fd, kCwd, e, file_.path, r)) return false;
    long ret = lkl_sys_close(file_.fd);
    file_.fd = -1;
    if (ret < 0) return Stop(r, ret, "close", file_.path);
    totals_.files++;
    totals_.bytes += e.st.st_size;
    Created(file_.path, r);
    return true;
  }

  // Owner first (it clears set-id bits), then mode, then extended
  // attributes (a chown drops security.capability), times last: through
  // fd, or by name in directory at for what has none open (symlinks,
  // device nodes). Owner and mode are set only where the new entry's
  // differ (a root-owned tree needs neither): a change is a journaled
  // inode update, a look is not. What the filesystem cannot hold (owners
  // on vfat) is a warning, not a stop.
  bool Metadata(long fd, long at, const TreeEntry &e, const std::string &path, StepResult *r) {
    const char *name = e.name.c_str();
    auto kept = [&](long ret, const char *what, const char *syscall, bool owner = false) {
      if (ret >= 0) return true;
      if (ret != -LKL_EPERM && ret != -LKL_EOPNOTSUPP && !(owner && ret == -LKL_EINVAL))
        return Stop(r, ret, syscall, path);
      r->warnings.push_back({what, path, ret});
      return true;
    };
    struct lkl_stat now;
    long ret = fd >= 0 ? lkl_sys_fstat(fd, &now) : lkl_sys_newfstatat(at, name, &now, kNoFollow);
    if (ret < 0) return Stop(r, ret, "lstat", path);
    long uid = opts_.uid >= 0 ? opts_.uid : e.st.st_uid, gid = opts_.gid >= 0 ? opts_.gid : e.st.st_gid;
    bool chown = now.st_uid != static_cast<unsigned long>(uid) || now.st_gid != static_cast<unsigned long>(gid);
    if (chown) {
      ret = fd >= 0 ? lkl_sys_fchown(fd, uid, gid) : lkl_sys_fchownat(at, name, uid, gid, kNoFollow);
      if (!kept(ret, "owner", "lchown", true)) return false;
    }
    unsigned mode = e.st.st_mode & 07777;
    if (!S_ISLNK(e.st.st_mode) && ((now.st_mode & 07777) != mode || (chown && (mode & 06000)))) {
      ret = fd >= 0 ? lkl_sys_fchmod(fd, mode) : lkl_sys_fchmodat(at, name, mode);
      if (!kept(ret, "mode", "chmod")) return false;
    }
    if (opts_.xattrs) {
      long refused = 0;
      for (auto &x : e.xattrs) {
        if (NotCopied(x.first) || (opts_.label && x.first == kSelinux)) continue;
        const char *n = x.first.c_str();
        ret = fd >= 0 ? lkl_sys_fsetxattr(fd, n, x.second.data(), x.second.size(), 0)
                      : lkl_sys_lsetxattr(path.c_str(), n, x.second.data(), x.second.size(), 0);
        if (ret == -LKL_EPERM || ret == -LKL_EOPNOTSUPP)
          refused = refused ? refused : ret;
        else if (ret < 0)
          return Stop(r, ret, "lsetxattr", path);
      }
      if (refused && !kept(refused, "extended attributes", "lsetxattr")) return false;
    }
    if (opts_.label) {
      const std::string &v = opts_.selinux;
      ret = fd >= 0 ? lkl_sys_fsetxattr(fd, kSelinux, v.data(), v.size(), 0)
                    : lkl_sys_lsetxattr(path.c_str(), kSelinux, v.data(), v.size(), 0);
      if (!kept(ret, "SELinux label", "lsetxattr")) return false;
    }
    struct __lkl__kernel_timespec ts[2] = {KernelTime(e.st.st_atim), KernelTime(e.st.st_mtim)};
    ret = fd >= 0 ? lkl_sys_utimensat(fd, nullptr, ts, 0) : lkl_sys_utimensat(at, name, ts, kNoFollow);
    return kept(ret, "timestamps", "utimensat");
  }

  static constexpr const char *kSelinux = "security.selinux";

  Options opts_;
  Totals totals_;
  std::vector<Open> dirs_;
  Open file_{-1, {}, TreeEntry(TreeEntry::File)};
  // The first entry of the queue was created by a step that then stopped.
  bool made_ = false;
};

// The reader and the writer; the JS object and the trips in flight share it.
struct Job {
  std::unique_ptr<TreeReader> reader;
  Writer writer;
  bool busy = false;  // JS thread only: a step or close in flight
};

Napi::Object ResultObject(Napi::Env env, const StepResult &r) {
  auto buffer = [&](const std::string &s) { return Napi::Buffer<char>::Copy(env, s.data(), s.size()); };
  Napi::Object o = Napi::Object::New(env);
  o.Set("totals", TotalsObject(env, r.totals));
  o.Set("warnings", WarningsArray(env, r.warnings));
  Napi::Array created = Napi::Array::New(env, r.created.size());
  for (size_t i = 0; i < r.created.size(); i++) created.Set(i, buffer(r.created[i]));
  o.Set("created", created);
  o.Set("done", r.done);
  o.Set("taken", Napi::Number::New(env, r.taken));
  if (r.syscall) {
    Napi::Object stop = Napi::Object::New(env);
    stop.Set("errno", Napi::Number::New(env, r.err));
    stop.Set("syscall", r.syscall);
    stop.Set("path", buffer(r.path));
    stop.Set("create", r.create);
    stop.Set("host", r.host);
    stop.Set("mode", Napi::Number::New(env, r.mode));
    stop.Set("bytes", Napi::Number::New(env, r.bytes));
    o.Set("stop", stop);
  }
  return o;
}

class TreeCopyIn : public Napi::ObjectWrap<TreeCopyIn> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TreeCopyIn",
                       {InstanceMethod<&TreeCopyIn::Step>("step"), InstanceMethod<&TreeCopyIn::Close>("close")});
  }

  // roots: [[hostPath, kernelPath], ...]; options: { uid, gid (-1: the
  // source's), xattrs, selinux? (a Buffer), listCreated }. The host walk
  // starts at once.
  explicit TreeCopyIn(const Napi::CallbackInfo &info) : Napi::ObjectWrap<TreeCopyIn>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray() || !info[1].IsObject())
      throw Napi::TypeError::New(env, "TreeCopyIn takes an array of [hostPath, kernelPath] and options");
    auto list = info[0].As<Napi::Array>();
    std::vector<TreeRoot> roots;
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value pair = list.Get(i);
      if (!pair.IsArray() || pair.As<Napi::Array>().Length() != 2)
        throw Napi::TypeError::New(env, "each root must be [hostPath, kernelPath]");
      auto p = pair.As<Napi::Array>();
      roots.push_back({PathValue(env, p.Get(0u), "a root's host path"), PathValue(env, p.Get(1u), "a root's kernel path")});
    }
    auto o = info[1].As<Napi::Object>();
    Options opts;
    opts.uid = o.Get("uid").ToNumber().Int64Value();
    opts.gid = o.Get("gid").ToNumber().Int64Value();
    opts.xattrs = o.Get("xattrs").ToBoolean().Value();
    Napi::Value label = o.Get("selinux");
    if (!label.IsUndefined()) {
      if (!label.IsBuffer()) throw Napi::TypeError::New(env, "selinux must be a Buffer");
      auto b = label.As<Napi::Buffer<char>>();
      opts.label = true;
      opts.selinux.assign(b.Data(), b.Length());
    }
    opts.list_created = o.Get("listCreated").ToBoolean().Value();
    job_ = std::make_shared<Job>(Job{std::make_unique<TreeReader>(std::move(roots), opts.xattrs), Writer(opts)});
  }

 private:
  // step(resume?) -> { totals, warnings: [[what, path, errno]], created,
  // done, taken, stop? }: the next entries copied; resume is what to do
  // with the entry the last step stopped at.
  Napi::Value Step(const Napi::CallbackInfo &info) {
    Resume resume = ResumeValue(info.Env(), info[0], "resume");
    auto r = std::make_shared<StepResult>();
    return RunCopyJob<Job>(
        info.Env(), "TreeCopyIn", "copy", job_,
        [resume, r](Job &job) {
          if (job.reader) job.writer.Step(job.reader.get(), resume, r.get());
          else r->done = true;
        },
        [r](Napi::Env env) { return ResultObject(env, *r); });
  }

  // close(): the walk stopped, what is still open closed. Always called.
  Napi::Value Close(const Napi::CallbackInfo &info) {
    return RunCopyJob<Job>(
        info.Env(), "TreeCopyIn", "close", job_,
        [](Job &job) {
          job.reader.reset();
          job.writer.Close();
        },
        [](Napi::Env env) { return env.Undefined(); });
  }

  std::shared_ptr<Job> job_;
};

}  // namespace

void RegisterTreeCopyIn(Napi::Env env, Napi::Object exports) {
  exports.Set("TreeCopyIn", TreeCopyIn::Define(env));
}

}  // namespace lklfs
