// SPDX-License-Identifier: GPL-2.0
// Keeps a walk of a large tree from filling the kernel's memory with what
// it has passed. The kernel keeps every inode and dentry it has looked up,
// and the metadata blocks it read, until its memory runs short; every page
// of its RAM it has once used stays in the process's RSS, so a walk of
// 100,000 entries took a 128 MiB kernel's all. Once the kernel uses a few
// MiB more than when the walk started, its clean caches are dropped
// (vm.drop_caches): the walk is past them, and what it holds open stays.
// The kernel then uses the same pages again, and the process's memory
// stays flat in the number of entries.
#pragma once

namespace lklfs {

class CacheTrim {
 public:
  // On a kernel thread, now and then: drops the caches if the kernel uses
  // more than its budget. Best effort: without /proc it does nothing.
  void Check();
  // On a kernel thread, once done.
  void Close();

 private:
  bool started_ = false;
  long control_ = -1;          // /proc/sys/vm/drop_caches
  unsigned long budget_ = 0;  // bytes in use that start a drop
};

}  // namespace lklfs
