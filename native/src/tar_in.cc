// SPDX-License-Identifier: GPL-2.0
// new TarCopyIn(fd, isFile, label, dest, options): a tar archive unpacked
// into the kernel directory dest with no trip per entry. A thread of its
// own reads, decompresses and parses the archive ahead (tar_in_reader.cc);
// each step() is one trip to a kernel thread that creates the next few
// thousand entries with their data and metadata: files through the
// descriptor just created, the rest by name in their open directory.
//
// Names are relative to dest: leading "/" and "./" go, names with ".."
// are not extracted. A directory's metadata is set after its contents
// (they would change its times, and a default ACL set first would be
// inherited by them): at the end, or once kOpenDirs directories have been
// used since it last was. GNU tar sets it as soon as the archive moves out
// of the directory, which suits its own depth-first archives but not
// bsdtar's, which lists a directory's subdirectories before going into each.
//
// The engine (src/engine/tar-in.ts) keeps the decisions that need a look
// at the image or at the host: a step stops, the entry it stopped at kept
// for the next, at a parent directory the archive has not given (found in
// the image, symlinks followed, or made), an entry in the way (replaced,
// or merged into), an entry the filesystem refuses (EPERM: left out), a
// whiteout (--whiteouts), ACL text (ids looked up on the host); the next
// step(resume) says what came of it. Nothing is left open in the kernel
// at a stop.
#include "kernel_api.h"

#include <sys/stat.h>

#include <list>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "args.h"
#include "copy.h"
#include "copy_job.h"
#include "exports.h"
#include "tar_in_reader.h"

namespace lklfs {
namespace {

// A step's size: how long progress and an abort wait, at most.
constexpr size_t kStepEntries = 4096;
constexpr int64_t kStepBytes = 64 << 20;
// A step with entries done ends when no more come in this long (a slow
// pipe): progress and -v show what is in.
constexpr int kStepWaitMs = 20;
// Directories remembered (their metadata waiting, their names), at the most.
constexpr size_t kOpenDirs = 65536;

constexpr long kCwd = LKL_AT_FDCWD;
constexpr long kNoFollow = LKL_AT_SYMLINK_NOFOLLOW;

const std::string kWhiteout = ".wh.";

// The engine's answer to where the last step stopped.
struct ResumeArgs {
  Resume action = Resume::None;
  // A directory the engine found or made for a key.
  bool has_dir = false;
  std::string dir_key, dir_kernel;
  // Directories gone from the image (whiteouts).
  std::vector<std::string> forget;
  // The ACLs of the entry stopped at, from their text.
  bool has_acl = false;
  Xattrs acl;
};

struct Warning {
  const char *what;
  std::string path;
  long err;
};

struct StepResult {
  Totals totals;
  std::vector<Warning> warnings;
  // Entries of an unknown type (extracted as files): path, type flag.
  std::vector<std::pair<std::string, char>> types;
  // Entries left out: why, member name.
  std::vector<std::pair<const char *, std::string>> skipped;
  std::vector<std::string> created;
  bool done = false, without_marker = false;
  // Where it stopped: a call that failed (create: the call that makes
  // the entry, of the kind in mode) ...
  const char *syscall = nullptr;
  long err = 0;
  std::string path;
  bool create = false;
  unsigned mode = 0;
  // ... a parent the archive has not given ...
  bool parent = false;
  std::string parent_key;
  // ... a whiteout: its directory's key, the name, the directory's kernel
  // path when known and the names the archive put in it ...
  bool whiteout = false, whiteout_known = false;
  std::string whiteout_key, whiteout_name, whiteout_dir;
  std::vector<std::string> whiteout_names;
  // ... ACL text to turn into attributes ...
  bool acl = false, acl_access = false, acl_default = false;
  std::string acl_path, acl_access_text, acl_default_text;
  // ... or a bad archive (what came before it is in, directories' metadata too).
  bool archive = false;
  std::string archive_error;
};

struct Options {
  long uid = -1, gid = -1;  // -1: the archive's
  bool xattrs = true, whiteouts = false, list_created = false;
};

struct Meta {
  uint32_t mode = 0;
  long uid = 0, gid = 0;
  int64_t atime_ns = 0, mtime_ns = 0;
  Xattrs xattrs;
};

// Where a member name puts its entry: its path relative to the
// destination ("." and empty components dropped, "" for the destination
// itself), its parent's and its last component; false when a component is "..".
struct Place {
  std::string key, parent, base;
};

bool PlaceOf(const std::string &name, Place *p) {
  std::vector<std::string> kept;
  for (size_t from = 0; from <= name.size();) {
    size_t slash = std::min(name.find('/', from), name.size());
    std::string part = name.substr(from, slash - from);
    from = slash + 1;
    if (part == "..") return false;
    if (!part.empty() && part != ".") kept.push_back(std::move(part));
  }
  p->base = kept.empty() ? "" : kept.back();
  if (!kept.empty()) kept.pop_back();
  p->parent.clear();
  for (auto &k : kept) p->parent += (p->parent.empty() ? "" : "/") + k;
  p->key = p->parent.empty() ? p->base : p->parent + "/" + p->base;
  return true;
}

std::string Join(const std::string &dir, const std::string &name) {
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

class Writer {
 public:
  Writer(Options opts, std::string dest) : opts_(opts), dest_(std::move(dest)) {
    StepResult unused;
    Track("", dest_, nullptr, &unused);
  }

  void Step(TarReader *reader, ResumeArgs &resume, StepResult *r) {
    if (resume.has_dir && !Track(resume.dir_key, resume.dir_kernel, nullptr, r)) return;
    for (auto &key : resume.forget) Forget(key);
    if (resume.has_acl) {
      acl_ = std::move(resume.acl);
      acl_ready_ = true;
    }
    size_t entries = 0;
    int64_t bytes = 0;
    while (entries < kStepEntries && bytes < kStepBytes) {
      TarItem *e = entries ? reader->FrontWithin(kStepWaitMs) : reader->Front();
      if (!e) {
        if (reader->Ended() && Finish(r)) {
          r->done = true;
          r->without_marker = reader->EndedWithoutMarker();
        }
        break;
      }
      if (Cancelled()) {
        Stop(r, -LKL_ECANCELED, "copy", e->name);
        break;
      }
      size_t length = e->length;
      // Stopped: the entry stays first, for the next step's resume.
      if (!Apply(*e, resume.action, r)) {
        Release();
        break;
      }
      resume.action = Resume::None;
      acl_ready_ = false;
      entries++;
      bytes += length;
      reader->Pop();
    }
    r->totals = totals_;
  }

  // What is still open (a job that stopped or failed).
  void Close() { Release(); }

 private:
  struct Dir {
    std::string kernel;
    bool has_meta = false;
    Meta meta;
    // Names this archive put in it (for whiteouts: they apply only to what was there before).
    std::set<std::string> names;
    std::list<std::string>::iterator at;
  };

  bool Stop(StepResult *r, long err, const char *syscall, const std::string &path, bool create = false, unsigned mode = 0) {
    r->err = err;
    r->syscall = syscall;
    r->path = path;
    r->create = create;
    r->mode = mode;
    return false;
  }

  void Release() {
    if (file_fd_ >= 0) lkl_sys_close(file_fd_);
    file_fd_ = -1;
    if (dir_fd_ >= 0) lkl_sys_close(dir_fd_);
    dir_fd_ = -1;
  }

  // One entry; false: stopped (r says where).
  bool Apply(const TarItem &e, Resume action, StepResult *r) {
    switch (e.kind) {
      case TarItem::Failed: {
        StepResult scratch;
        Finish(&scratch);
        r->archive = true;
        r->archive_error = e.error;
        return false;
      }
      case TarItem::Piece:
        return skipping_ || Write(e, r);
      case TarItem::FileEnd:
        if (skipping_) {
          skipping_ = false;
          return true;
        }
        return EndFile(e.offset, r);
      default:
        break;
    }
    Place p;
    if (!PlaceOf(e.name, &p)) return Skip(r, "names with \"..\"", e);
    bool dir = e.kind == TarItem::Dir;
    if (p.key.empty()) {
      if (!dir) return Skip(r, "not a directory, yet named as the destination itself", e);
      if (!AclReady(e, dest_, r)) return false;
      Meta meta = MetaOf(e);
      if (!Track("", dest_, &meta, r)) return false;
      totals_.entries++;
      return true;
    }
    if (opts_.whiteouts && p.base.rfind(kWhiteout, 0) == 0) {
      if (action == Resume::Skip) return LeaveOut(e);
      auto at = dirs_.find(p.parent);
      r->whiteout = true;
      r->whiteout_key = p.parent;
      r->whiteout_name = p.base;
      r->whiteout_known = at != dirs_.end();
      if (r->whiteout_known) {
        r->whiteout_dir = at->second.kernel;
        r->whiteout_names.assign(at->second.names.begin(), at->second.names.end());
      }
      return false;
    }
    Dir *parent = DirFor(p.parent);
    if (!parent) return Parent(r, p.parent);
    if (opts_.whiteouts) parent->names.insert(p.base);
    std::string path = Join(parent->kernel, p.base);
    std::string target;
    if (e.kind == TarItem::Link) {
      Place t;
      if (!PlaceOf(e.link, &t) || t.key.empty()) return Skip(r, "hard links to names with \"..\"", e);
      if (t.key == p.key) return true;
      auto at = dirs_.find(t.parent);
      Dir *in = at != dirs_.end() ? &at->second : DirFor(t.parent);
      if (!in) return Parent(r, t.parent);
      target = Join(in->kernel, t.base);
    } else if (!AclReady(e, path, r)) {
      return false;
    }
    if (action == Resume::Skip) {
      // Refused by the filesystem (the engine warned): counted, left out.
      totals_.entries++;
      if (e.kind == TarItem::Link) totals_.hardlinks++;
      Created(path, r);
      return LeaveOut(e);
    }
    if (!OpenDir(p.parent, *parent, r)) return false;
    const char *name = p.base.c_str();
    long ret;
    switch (e.kind) {
      case TarItem::Dir: {
        if (action != Resume::Merge && (ret = lkl_sys_mkdirat(dir_fd_, name, 0700)) < 0)
          return Stop(r, ret, "mkdir", path, true, S_IFDIR | e.mode);
        Meta meta = MetaOf(e);
        if (!Track(p.key, path, &meta, r)) return false;
        break;
      }
      case TarItem::File: {
        long flags = LKL_O_WRONLY | LKL_O_CREAT | LKL_O_EXCL | LKL_O_NOFOLLOW | LKL_O_CLOEXEC;
        long fd = lkl_sys_openat(dir_fd_, name, flags, e.mode & 0777);
        if (fd < 0) return Stop(r, fd, "open", path, true, S_IFREG | e.mode);
        if (e.unknown_type) r->types.emplace_back(path, e.unknown_type);
        file_fd_ = fd;
        file_path_ = std::move(path);
        file_meta_ = MetaOf(e);
        file_end_ = 0;
        // Its data in pieces, then its end: the file stays open till then.
        if (e.pieces) return true;
        return Write(e, r) && EndFile(e.length, r);
      }
      case TarItem::Symlink:
        if ((ret = lkl_sys_symlinkat(e.link.c_str(), dir_fd_, name)) < 0) return Stop(r, ret, "symlink", path, true, S_IFLNK | 0777);
        if (!Metadata(-1, dir_fd_, name, path, MetaOf(e), true, r)) return false;
        break;
      case TarItem::Link:
        if ((ret = lkl_sys_linkat(kCwd, target.c_str(), dir_fd_, name, 0)) < 0) return Stop(r, ret, "link", path, true, S_IFREG);
        totals_.hardlinks++;
        break;
      default:
        if ((ret = lkl_sys_mknodat(dir_fd_, name, e.node_type | e.mode, EncodeDev(e.dev_major, e.dev_minor))) < 0)
          return Stop(r, ret, "mknod", path, true, e.node_type | e.mode);
        if (!Metadata(-1, dir_fd_, name, path, MetaOf(e), false, r)) return false;
    }
    totals_.entries++;
    Created(path, r);
    return true;
  }

  bool Skip(StepResult *r, const char *why, const TarItem &e) {
    r->skipped.emplace_back(why, e.name);
    return LeaveOut(e);
  }

  // An entry not extracted: a file's pieces, if any, go too.
  bool LeaveOut(const TarItem &e) {
    skipping_ = e.kind == TarItem::File && e.pieces;
    return true;
  }

  bool Parent(StepResult *r, const std::string &key) {
    r->parent = true;
    r->parent_key = key;
    return false;
  }

  // The ACLs in e's text, once the engine has turned them into attributes.
  bool AclReady(const TarItem &e, const std::string &path, StepResult *r) {
    if (!opts_.xattrs || acl_ready_) return true;
    auto has = [&](const char *name) {
      for (auto &x : e.xattrs)
        if (x.first == name) return true;
      return false;
    };
    bool access = e.has_acl_access && !has("system.posix_acl_access");
    bool def = e.kind == TarItem::Dir && e.has_acl_default && !has("system.posix_acl_default");
    if (!access && !def) return true;
    r->acl = true;
    r->acl_path = path;
    r->acl_access = access;
    r->acl_access_text = access ? e.acl_access : "";
    r->acl_default = def;
    r->acl_default_text = def ? e.acl_default : "";
    return false;
  }

  // The metadata the archive gives e: a file's own attributes (a default
  // ACL only on a directory), then its ACLs from their text.
  Meta MetaOf(const TarItem &e) {
    Meta m;
    m.mode = e.mode;
    m.uid = opts_.uid >= 0 ? opts_.uid : e.uid;
    m.gid = opts_.gid >= 0 ? opts_.gid : e.gid;
    m.atime_ns = e.atime_ns;
    m.mtime_ns = e.mtime_ns;
    if (!opts_.xattrs) return m;
    for (auto &x : e.xattrs)
      if (FileOwn(x.first) && (x.first != "system.posix_acl_default" || e.kind == TarItem::Dir)) m.xattrs.push_back(x);
    if (acl_ready_) m.xattrs.insert(m.xattrs.end(), acl_.begin(), acl_.end());
    return m;
  }

  void Created(const std::string &path, StepResult *r) {
    if (opts_.list_created) r->created.push_back(path);
  }

  // The open directory entries go into by name.
  bool OpenDir(const std::string &key, const Dir &d, StepResult *r) {
    if (dir_fd_ >= 0 && dir_key_ == key) return true;
    if (dir_fd_ >= 0) lkl_sys_close(dir_fd_);
    dir_fd_ = lkl_sys_openat(kCwd, d.kernel.c_str(), LKL_O_RDONLY | LKL_O_DIRECTORY | LKL_O_CLOEXEC, 0);
    if (dir_fd_ < 0) {
      long err = dir_fd_;
      dir_fd_ = -1;
      return Stop(r, err, "open", d.kernel);
    }
    dir_key_ = key;
    return true;
  }

  // Data into the file being written.
  bool Write(const TarItem &e, StepResult *r) {
    for (size_t put = 0; put < e.length;) {
      long n = lkl_sys_pwrite64(file_fd_, e.data + put, e.length - put, e.offset + put);
      if (n < 0) return Stop(r, n, "write", file_path_);
      put += n;
    }
    file_end_ = std::max<int64_t>(file_end_, e.offset + e.length);
    totals_.bytes += e.length;
    return true;
  }

  // The file being written is size bytes long (a hole at its end sets
  // that), gets its metadata and is closed.
  bool EndFile(int64_t size, StepResult *r) {
    long ret = file_end_ < size ? lkl_sys_ftruncate(file_fd_, size) : 0;
    if (ret < 0) return Stop(r, ret, "truncate", file_path_);
    if (!Metadata(file_fd_, kCwd, nullptr, file_path_, file_meta_, false, r)) return false;
    ret = lkl_sys_close(file_fd_);
    file_fd_ = -1;
    if (ret < 0) return Stop(r, ret, "close", file_path_);
    totals_.files++;
    totals_.entries++;
    Created(file_path_, r);
    return true;
  }

  // Owner first (it clears set-id bits), then mode, then extended
  // attributes (a chown drops security.capability; an ACL sets the group
  // bits), times last: through fd, or by name in directory at. Owner and
  // mode are set only where the new entry's differ: a change is a
  // journaled inode update, a look is not. What the filesystem cannot
  // hold (owners on vfat) is a warning, not a stop.
  bool Metadata(long fd, long at, const char *name, const std::string &path, const Meta &m, bool symlink, StepResult *r) {
    if (!name) name = path.c_str();
    auto kept = [&](long ret, const char *what, const char *syscall, bool owner = false) {
      if (ret >= 0) return true;
      if (ret != -LKL_EPERM && ret != -LKL_EOPNOTSUPP && !(owner && ret == -LKL_EINVAL)) return Stop(r, ret, syscall, path);
      r->warnings.push_back({what, path, ret});
      return true;
    };
    struct lkl_stat now;
    long ret = fd >= 0 ? lkl_sys_fstat(fd, &now) : lkl_sys_newfstatat(at, name, &now, kNoFollow);
    if (ret < 0) return Stop(r, ret, "lstat", path);
    bool chown = now.st_uid != static_cast<unsigned long>(m.uid) || now.st_gid != static_cast<unsigned long>(m.gid);
    if (chown) {
      ret = fd >= 0 ? lkl_sys_fchown(fd, m.uid, m.gid) : lkl_sys_fchownat(at, name, m.uid, m.gid, kNoFollow);
      if (!kept(ret, "owner", "lchown", true)) return false;
    }
    if (!symlink && ((now.st_mode & 07777) != m.mode || (chown && (m.mode & 06000)))) {
      ret = fd >= 0 ? lkl_sys_fchmod(fd, m.mode) : lkl_sys_fchmodat(at, name, m.mode);
      if (!kept(ret, "mode", "chmod")) return false;
    }
    long refused = 0;
    for (auto &x : m.xattrs) {
      const char *n = x.first.c_str();
      ret = fd >= 0 ? lkl_sys_fsetxattr(fd, n, x.second.data(), x.second.size(), 0)
                    : lkl_sys_lsetxattr(path.c_str(), n, x.second.data(), x.second.size(), 0);
      if (ret == -LKL_EPERM || ret == -LKL_EOPNOTSUPP)
        refused = refused ? refused : ret;
      else if (ret < 0)
        return Stop(r, ret, "lsetxattr", path);
    }
    if (refused && !kept(refused, "extended attributes", "lsetxattr")) return false;
    struct __lkl__kernel_timespec ts[2] = {SplitNs<struct __lkl__kernel_timespec>(m.atime_ns),
                                           SplitNs<struct __lkl__kernel_timespec>(m.mtime_ns)};
    ret = fd >= 0 ? lkl_sys_utimensat(fd, nullptr, ts, 0) : lkl_sys_utimensat(at, name, ts, kNoFollow);
    return kept(ret, "timestamps", "utimensat");
  }

  // The directory at key, to put an entry in: the most recently used from now.
  Dir *DirFor(const std::string &key) {
    auto it = dirs_.find(key);
    if (it == dirs_.end()) return nullptr;
    if (!(last_valid_ && last_dir_ == key)) {
      lru_.splice(lru_.end(), lru_, it->second.at);
      last_dir_ = key;
      last_valid_ = true;
    }
    return &it->second;
  }

  // Remembers a directory (most recently used), with the metadata it is
  // to get, if any; the one used longest ago goes, its metadata set.
  bool Track(const std::string &key, const std::string &kernel, const Meta *meta, StepResult *r) {
    Dir d;
    auto it = dirs_.find(key);
    if (it != dirs_.end()) {
      d.names = std::move(it->second.names);
      lru_.erase(it->second.at);
      dirs_.erase(it);
    }
    // Its path may be new: the open one is not trusted for it.
    if (dir_fd_ >= 0 && key == dir_key_) {
      lkl_sys_close(dir_fd_);
      dir_fd_ = -1;
    }
    d.kernel = kernel;
    d.has_meta = meta != nullptr;
    if (meta) d.meta = *meta;
    d.at = lru_.insert(lru_.end(), key);
    dirs_.emplace(key, std::move(d));
    last_valid_ = false;
    if (dirs_.size() <= kOpenDirs) return true;
    auto oldest = dirs_.find(lru_.front());
    Dir old = std::move(oldest->second);
    dirs_.erase(oldest);
    lru_.pop_front();
    return CloseDir(old, r);
  }

  // A directory whose contents are in (as far as we know): its metadata.
  bool CloseDir(const Dir &d, StepResult *r) {
    return !d.has_meta || Metadata(-1, kCwd, nullptr, d.kernel, d.meta, false, r);
  }

  // The directories' metadata, once the archive is all in.
  bool Finish(StepResult *r) {
    for (auto &key : lru_)
      if (!CloseDir(dirs_[key], r)) return false;
    dirs_.clear();
    lru_.clear();
    return true;
  }

  // Directories at key and under it are gone from the image.
  void Forget(const std::string &key) {
    for (auto it = dirs_.begin(); it != dirs_.end();) {
      const std::string &k = it->first;
      if (k == key || k.rfind(key + "/", 0) == 0) {
        lru_.erase(it->second.at);
        it = dirs_.erase(it);
      } else {
        ++it;
      }
    }
  }

  Options opts_;
  std::string dest_;
  Totals totals_;
  std::unordered_map<std::string, Dir> dirs_;
  // Directory keys, least recently used first.
  std::list<std::string> lru_;
  std::string last_dir_;
  bool last_valid_ = false;
  // The open directory and its key.
  long dir_fd_ = -1;
  std::string dir_key_;
  // The file being written.
  long file_fd_ = -1;
  std::string file_path_;
  Meta file_meta_;
  int64_t file_end_ = 0;
  // A file left out whose pieces are still to come.
  bool skipping_ = false;
  // The ACLs the engine made for the entry at the front.
  bool acl_ready_ = false;
  Xattrs acl_;
};

struct Job {
  std::unique_ptr<TarReader> reader;
  Writer writer;
  bool busy = false;  // JS thread only: a step or close in flight
};

Napi::Object ResultObject(Napi::Env env, const StepResult &r) {
  auto buffer = [&](const std::string &s) { return Napi::Buffer<char>::Copy(env, s.data(), s.size()); };
  auto list = [&](const std::vector<std::string> &v) {
    Napi::Array a = Napi::Array::New(env, v.size());
    for (size_t i = 0; i < v.size(); i++) a.Set(i, buffer(v[i]));
    return a;
  };
  Napi::Object o = Napi::Object::New(env);
  o.Set("totals", TotalsObject(env, r.totals));
  o.Set("warnings", WarningsArray(env, r.warnings));
  Napi::Array types = Napi::Array::New(env, r.types.size());
  for (size_t i = 0; i < r.types.size(); i++) {
    Napi::Array t = Napi::Array::New(env, 2);
    t.Set(0u, buffer(r.types[i].first));
    t.Set(1u, std::string(1, r.types[i].second));
    types.Set(i, t);
  }
  o.Set("types", types);
  Napi::Array skipped = Napi::Array::New(env, r.skipped.size());
  for (size_t i = 0; i < r.skipped.size(); i++) {
    Napi::Array s = Napi::Array::New(env, 2);
    s.Set(0u, r.skipped[i].first);
    s.Set(1u, buffer(r.skipped[i].second));
    skipped.Set(i, s);
  }
  o.Set("skipped", skipped);
  o.Set("created", list(r.created));
  o.Set("done", r.done);
  o.Set("endedWithoutMarker", r.without_marker);
  if (r.syscall) {
    Napi::Object stop = Napi::Object::New(env);
    stop.Set("errno", Napi::Number::New(env, r.err));
    stop.Set("syscall", r.syscall);
    stop.Set("path", buffer(r.path));
    stop.Set("create", r.create);
    stop.Set("mode", Napi::Number::New(env, r.mode));
    o.Set("stop", stop);
  }
  if (r.parent) o.Set("parent", buffer(r.parent_key));
  if (r.whiteout) {
    Napi::Object w = Napi::Object::New(env);
    w.Set("key", buffer(r.whiteout_key));
    w.Set("name", buffer(r.whiteout_name));
    if (r.whiteout_known) w.Set("dir", buffer(r.whiteout_dir));
    w.Set("names", list(r.whiteout_names));
    o.Set("whiteout", w);
  }
  if (r.acl) {
    Napi::Object a = Napi::Object::New(env);
    a.Set("path", buffer(r.acl_path));
    if (r.acl_access) a.Set("access", r.acl_access_text);
    if (r.acl_default) a.Set("default", r.acl_default_text);
    o.Set("acl", a);
  }
  if (r.archive) o.Set("archiveError", r.archive_error);
  return o;
}

ResumeArgs ResumeArg(Napi::Env env, Napi::Value v) {
  ResumeArgs resume;
  if (v.IsUndefined()) return resume;
  if (!v.IsObject()) throw Napi::TypeError::New(env, "resume must be an object");
  auto o = v.As<Napi::Object>();
  resume.action = ResumeValue(env, o.Get("action"), "action");
  Napi::Value dir = o.Get("dir");
  if (dir.IsArray()) {
    auto pair = dir.As<Napi::Array>();
    resume.has_dir = true;
    resume.dir_key = PathValue(env, pair.Get(0u), "dir's key");
    resume.dir_kernel = PathValue(env, pair.Get(1u), "dir's kernel path");
  }
  Napi::Value forget = o.Get("forget");
  if (forget.IsArray()) {
    auto keys = forget.As<Napi::Array>();
    for (uint32_t i = 0; i < keys.Length(); i++) resume.forget.push_back(PathValue(env, keys.Get(i), "forget's keys"));
  }
  Napi::Value acl = o.Get("acl");
  if (acl.IsArray()) {
    resume.has_acl = true;
    auto list = acl.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      auto pair = list.Get(i).As<Napi::Array>();
      Napi::Value value = pair.Get(1u);
      if (!value.IsBuffer()) throw Napi::TypeError::New(env, "an ACL's value must be a Buffer");
      auto b = value.As<Napi::Buffer<char>>();
      resume.acl.emplace_back(PathValue(env, pair.Get(0u), "an ACL's name"), std::string(b.Data(), b.Length()));
    }
  }
  return resume;
}

class TarCopyIn : public Napi::ObjectWrap<TarCopyIn> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TarCopyIn", {InstanceMethod<&TarCopyIn::Step>("step"), InstanceMethod<&TarCopyIn::Close>("close")});
  }

  // fd (the caller's, open until close() has settled), isFile (a regular
  // file, read from its start), label (its name in messages), dest (the
  // kernel path of the directory to unpack into), options: { uid, gid
  // (-1: the archive's), xattrs, whiteouts, listCreated }. Reading starts
  // at once.
  explicit TarCopyIn(const Napi::CallbackInfo &info) : Napi::ObjectWrap<TarCopyIn>(info) {
    Napi::Env env = info.Env();
    int fd = IntArg(info, 0);
    bool file = BoolArg(info, 1);
    std::string label = StringArg(info, 2), dest = PathArg(info, 3);
    if (!info[4].IsObject()) throw Napi::TypeError::New(env, "argument 4 must be the options");
    auto o = info[4].As<Napi::Object>();
    Options opts;
    opts.uid = o.Get("uid").ToNumber().Int64Value();
    opts.gid = o.Get("gid").ToNumber().Int64Value();
    opts.xattrs = o.Get("xattrs").ToBoolean().Value();
    opts.whiteouts = o.Get("whiteouts").ToBoolean().Value();
    opts.list_created = o.Get("listCreated").ToBoolean().Value();
    job_ = std::make_shared<Job>(Job{std::make_unique<TarReader>(fd, file, label), Writer(opts, dest)});
  }

 private:
  // step(resume?) -> the next entries unpacked (see src/kernel/binding.ts).
  Napi::Value Step(const Napi::CallbackInfo &info) {
    auto resume = std::make_shared<ResumeArgs>(ResumeArg(info.Env(), info[0]));
    auto r = std::make_shared<StepResult>();
    return RunCopyJob<Job>(
        info.Env(), "TarCopyIn", "copy", job_,
        [resume, r](Job &job) {
          if (job.reader) job.writer.Step(job.reader.get(), *resume, r.get());
          else r->done = true;
        },
        [r](Napi::Env env) { return ResultObject(env, *r); });
  }

  // close(): the reading stopped (a decompressor too), what is open
  // closed. Always called.
  Napi::Value Close(const Napi::CallbackInfo &info) {
    return RunCopyJob<Job>(
        info.Env(), "TarCopyIn", "close", job_,
        [](Job &job) {
          job.reader.reset();
          job.writer.Close();
        },
        [](Napi::Env env) { return env.Undefined(); });
  }

  std::shared_ptr<Job> job_;
};

}  // namespace

void RegisterTarCopyIn(Napi::Env env, Napi::Object exports) {
  exports.Set("TarCopyIn", TarCopyIn::Define(env));
}

}  // namespace lklfs
