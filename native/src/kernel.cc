// SPDX-License-Identifier: GPL-2.0
// The kernel's life in this process: boot, disks, mounts, halt, and its log.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "kernel_api.h"

#include <map>
#include <mutex>
#include <set>

#include "args.h"
#include "disks.h"
#include "exports.h"
#include "queue.h"

namespace lklfs {
namespace {

// The kernel's messages since the last TakeLog(): the engine quotes them
// when a mount fails ("EXT4-fs (lkl0): bad geometry ..."). Bounded, oldest
// text dropped first.
constexpr size_t kLogLimit = 64 * 1024;
std::mutex log_lock;
std::string log_text;
// echoLog(true): each message also goes to stderr as it is printed (the
// -p of LKL's tools).
bool log_echo = false;

void LogPrint(const char *str, int len) {
  std::lock_guard<std::mutex> hold(log_lock);
  if (log_echo && write(2, str, len) < 0) {
    // A stderr that is gone loses the echo only; the log keeps the text.
  }
  log_text.append(str, len);
  if (log_text.size() > kLogLimit) log_text.erase(0, log_text.size() - kLogLimit);
}

struct lkl_host_operations host_ops;

// A kernel panic ends the process (the host library's panic op): what the
// kernel said last goes to stderr first, or the reason would be lost in
// our log buffer.
void Panic() {
  {
    std::lock_guard<std::mutex> hold(log_lock);
    static const char head[] = "lklfs: the kernel panicked; its last messages:\n";
    size_t from = log_text.size() > 4096 ? log_text.size() - 4096 : 0;
    if (write(2, head, sizeof(head) - 1) < 0 || write(2, log_text.data() + from, log_text.size() - from) < 0) {
      // Nothing more to do about a stderr that is gone.
    }
  }
  lkl_host_ops.panic();
}

std::mutex disks_lock;
std::map<long, struct lkl_disk> disks;  // disk id -> its image
std::set<std::pair<long, long>> mounts;  // (disk id, partition)

Napi::Value Boot(const Napi::CallbackInfo &info) {
  std::string cmdline = StringArg(info, 0);
  return Submit(info.Env(), "boot", "", [cmdline] {
    long ret = lkl_start_kernel("%s", cmdline.c_str());
    // Modes given to mkdir/open/mknod are meant exactly; all our threads
    // share one fs_struct, so this is once for all.
    if (ret == 0) lkl_sys_umask(0);
    return ret;
  });
}

Napi::Value IsRunning(const Napi::CallbackInfo &info) {
  return Napi::Boolean::New(info.Env(), lkl_is_running());
}

Napi::Value EchoLog(const Napi::CallbackInfo &info) {
  std::lock_guard<std::mutex> hold(log_lock);
  log_echo = BoolArg(info, 0);
  return info.Env().Undefined();
}

Napi::Value TakeLog(const Napi::CallbackInfo &info) {
  std::lock_guard<std::mutex> hold(log_lock);
  Napi::String text = Napi::String::New(info.Env(), log_text);
  log_text.clear();
  return text;
}

// addDisk(imagePath, readOnly) -> disk id. A read-only disk's image is
// opened O_RDONLY: the block layer refuses writes, nothing can change it.
// The image is locked (flock) until halt closes it.
Napi::Value AddDisk(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  bool ro = BoolArg(info, 1);
  return Submit(info.Env(), "open", path, [path, ro]() -> long {
    int fd = open(path.c_str(), (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) return -errno;
    // Two writers would each cache the filesystem and corrupt it, and a
    // reader would see it half written: writers lock the image alone,
    // readers together. EWOULDBLOCK if another process holds it.
    if (flock(fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
      long err = -errno;
      close(fd);
      return err;
    }
    struct lkl_disk disk = {};
    disk.fd = fd;
    long id = lkl_disk_add(&disk);
    if (id < 0) {
      close(fd);
      return id;
    }
    std::lock_guard<std::mutex> hold(disks_lock);
    disks[id] = disk;
    return id;
  });
}

// waitImage(imagePath, exclusive, timeoutMs) -> 1 once the image could be
// locked as AddDisk locks it (shared: no writer has it; exclusive: nobody
// has it), 0 if the time ran out first. The lock is let go at once: this
// only waits for another process (a mount's daemon) to be done with it.
Napi::Value WaitImage(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info, 0);
  bool exclusive = BoolArg(info, 1);
  int64_t timeout_ms = IntArg(info, 2);
  return Submit(info.Env(), "flock", path, [=]() -> long {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    long ret = 0;
    for (int64_t waited = 0; waited <= timeout_ms; waited += 20) {
      if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) {
        ret = 1;
        break;
      }
      if (errno != EWOULDBLOCK) {
        ret = -errno;
        break;
      }
      usleep(20 * 1000);
    }
    close(fd);
    return ret;
  });
}

// mount(diskId, partition, fsType, readOnly, options) -> mount point
Napi::Value Mount(const Napi::CallbackInfo &info) {
  long id = IntArg(info, 0), part = IntArg(info, 1);
  std::string type = StringArg(info, 2);
  bool ro = BoolArg(info, 3);
  std::string opts = StringArg(info, 4);
  auto mnt = std::make_shared<std::string>(64, '\0');
  return Submit(
      info.Env(), "mount", "",
      [=] {
        long ret = lkl_mount_dev(id, part, type.c_str(), ro ? LKL_MS_RDONLY : 0,
                                 opts.empty() ? nullptr : opts.c_str(), mnt->data(), mnt->size());
        if (ret == 0) {
          std::lock_guard<std::mutex> hold(disks_lock);
          mounts.insert({id, part});
        }
        return ret;
      },
      [mnt](Napi::Env env, long) { return Napi::String::New(env, mnt->c_str()); });
}

Napi::Value Umount(const Napi::CallbackInfo &info) {
  long id = IntArg(info, 0), part = IntArg(info, 1);
  return Submit(info.Env(), "umount", "", [=] {
    long ret = lkl_umount_dev(id, part, 0, 5000);
    if (ret == 0) {
      std::lock_guard<std::mutex> hold(disks_lock);
      mounts.erase({id, part});
    }
    return ret;
  });
}

// removeDisk(id): detaches an unmounted disk and closes its image (which
// also lets go of its lock).
Napi::Value RemoveDisk(const Napi::CallbackInfo &info) {
  long id = IntArg(info, 0);
  return Submit(info.Env(), "removeDisk", "", [id]() -> long {
    std::lock_guard<std::mutex> hold(disks_lock);
    auto d = disks.find(id);
    if (d == disks.end()) return -LKL_ENOENT;
    long ret = lkl_disk_remove(d->second);
    if (ret < 0) return ret;
    close(d->second.fd);
    disks.erase(d);
    return 0;
  });
}

// reattachDisk(id) -> disk id: detaches an unmounted disk and attaches its
// image again, keeping the open file and its lock: the kernel reads the
// image's size and its partition table anew (after the image was grown).
// The id is the lowest free one, so the same unless a lower one was freed.
Napi::Value ReattachDisk(const Napi::CallbackInfo &info) {
  long id = IntArg(info, 0);
  return Submit(info.Env(), "reattachDisk", "", [id]() -> long {
    std::lock_guard<std::mutex> hold(disks_lock);
    auto d = disks.find(id);
    if (d == disks.end()) return -LKL_ENOENT;
    struct lkl_disk disk = d->second;
    long ret = lkl_disk_remove(disk);
    if (ret < 0) return ret;
    disks.erase(d);
    long again = lkl_disk_add(&disk);
    if (again < 0) {
      close(disk.fd);
      return again;
    }
    disks[again] = disk;
    return again;
  });
}

// Syncs every filesystem, stops the kernel and closes the images.
Napi::Value Halt(const Napi::CallbackInfo &info) {
  return Submit(info.Env(), "halt", "", [] {
    long ret = lkl_sys_halt();
    if (ret) return ret;
    lkl_cleanup();
    std::lock_guard<std::mutex> hold(disks_lock);
    for (auto &d : disks) close(d.second.fd);
    disks.clear();
    return 0L;
  });
}

}  // namespace

int DupDiskImage(long id) {
  std::lock_guard<std::mutex> hold(disks_lock);
  auto d = disks.find(id);
  if (d == disks.end()) return -LKL_ENOENT;
  int fd = fcntl(d->second.fd, F_DUPFD_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}

void KernelShutdown() {
  if (!lkl_is_running()) return;
  std::lock_guard<std::mutex> hold(disks_lock);
  for (auto &m : mounts) {
    long ret = lkl_umount_dev(m.first, m.second, 0, 1000);
    if (ret == -LKL_EBUSY) {
      // Files left open by JS keep the filesystem busy: all host tasks
      // share one file table, so this closes them all.
      lkl_sys_close_range(0, ~0U, 0);
      lkl_umount_dev(m.first, m.second, 0, 1000);
    }
  }
  mounts.clear();
  lkl_sys_halt();
}

void RegisterKernel(Napi::Env env, Napi::Object exports) {
  // Only records the host operations: disks can be added before boot.
  host_ops = lkl_host_ops;
  host_ops.print = LogPrint;
  host_ops.panic = Panic;
  lkl_init(&host_ops);
  exports.Set("boot", Napi::Function::New(env, Boot, "boot"));
  exports.Set("isRunning", Napi::Function::New(env, IsRunning, "isRunning"));
  exports.Set("takeLog", Napi::Function::New(env, TakeLog, "takeLog"));
  exports.Set("echoLog", Napi::Function::New(env, EchoLog, "echoLog"));
  exports.Set("addDisk", Napi::Function::New(env, AddDisk, "addDisk"));
  exports.Set("waitImage", Napi::Function::New(env, WaitImage, "waitImage"));
  exports.Set("mount", Napi::Function::New(env, Mount, "mount"));
  exports.Set("umount", Napi::Function::New(env, Umount, "umount"));
  exports.Set("removeDisk", Napi::Function::New(env, RemoveDisk, "removeDisk"));
  exports.Set("reattachDisk", Napi::Function::New(env, ReattachDisk, "reattachDisk"));
  exports.Set("halt", Napi::Function::New(env, Halt, "halt"));
}

}  // namespace lklfs
