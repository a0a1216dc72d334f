// SPDX-License-Identifier: GPL-2.0
// Dropping the kernel's caches as a walk goes on (cache_trim.h).
#include "cache_trim.h"

#include "kernel_api.h"

#include <lkl/linux/sysinfo.h>

namespace lklfs {

namespace {

// What a walk may fill before a drop: room for the directories and inodes
// it is among, and a few thousand behind. Measured on fs2tar of 100,000
// entries and of /usr/share: budgets from a quarter of a 128 MiB kernel
// down to 4 MiB were as fast as each other (the smaller a little faster:
// fewer of the kernel's pages first touched, shorter hash chains), the
// peak RSS 111-121 MiB with a quarter, 87-93 with 8 MiB, 82-87 with 4.
constexpr unsigned long kBudget = 8 << 20;

}  // namespace

void CacheTrim::Close() {
  if (control_ >= 0) lkl_sys_close(control_);
  control_ = -1;
}

void CacheTrim::Check() {
  if (!started_) {
    started_ = true;
    if (lkl_mount_fs(const_cast<char *>("proc")) < 0) return;
    control_ = lkl_sys_openat(LKL_AT_FDCWD, "/proc/sys/vm/drop_caches", LKL_O_WRONLY | LKL_O_CLOEXEC, 0);
    // 4: the kernel's log says so this once, not at every drop. Written at
    // offset 0: a sysctl ignores writes past its start.
    if (control_ >= 0) lkl_sys_pwrite64(control_, "4", 1, 0);
  }
  struct lkl_sysinfo info;
  if (control_ < 0 || lkl_sys_sysinfo(&info) < 0) return;
  unsigned long total = info.totalram * info.mem_unit, used = total - info.freeram * info.mem_unit;
  if (!budget_) budget_ = used + kBudget;
  // 1: clean page cache (the metadata blocks read), 2: unused dentries and inodes.
  if (used >= budget_) lkl_sys_pwrite64(control_, "3", 1, 0);
}

}  // namespace lklfs
