// SPDX-License-Identifier: GPL-2.0
// The kernel library's API and the uapi definitions the binding uses
// (prefixed LKL_/lkl_, see lkl-build/scripts/install_headers.py).
#pragma once

#include <cstdint>

#include <lkl.h>
#include <lkl_host.h>
#include <lkl/asm/errno.h>
#include <lkl/asm/stat.h>
#include <lkl/linux/fadvise.h>
#include <lkl/linux/fcntl.h>
#include <lkl/linux/fs.h>
#include <lkl/linux/mount.h>
#include <lkl/linux/stat.h>
#include <lkl/asm/statfs.h>
#include <lkl/linux/time_types.h>

namespace lklfs {

// Device numbers as the kernel's stat and mknod carry them (its
// new_encode_dev() layout: 12 bits of major, 20 of minor, interleaved).
inline unsigned long EncodeDev(unsigned long major, unsigned long minor) {
  return (minor & 0xff) | (major << 8) | ((minor & ~0xffUL) << 12);
}
inline unsigned long DevMajor(unsigned long dev) { return (dev >> 8) & 0xfff; }
inline unsigned long DevMinor(unsigned long dev) { return (dev & 0xff) | ((dev >> 12) & 0xfff00); }

// Data read once, on its way out of the image, need not stay in the
// kernel's page cache: dropped, its pages are what the next read reuses,
// so the host memory behind the kernel's RAM stays small for a read job.
inline void DropCache(long fd, int64_t off, int64_t len) {
  lkl_sys_fadvise64(fd, off, len, LKL_POSIX_FADV_DONTNEED);
}

}  // namespace lklfs
