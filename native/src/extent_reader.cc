// SPDX-License-Identifier: GPL-2.0
// Reading a kernel file's data from the image on the host (extent_reader.h).
#include "extent_reader.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "kernel_api.h"

#include <lkl/linux/fiemap.h>
#include <lkl/linux/magic.h>

namespace lklfs {

namespace {

// Extents whose bytes on the disk are not the file's bytes as they are.
constexpr uint32_t kNotPlain = LKL_FIEMAP_EXTENT_UNKNOWN | LKL_FIEMAP_EXTENT_DELALLOC | LKL_FIEMAP_EXTENT_ENCODED |
                               LKL_FIEMAP_EXTENT_DATA_ENCRYPTED | LKL_FIEMAP_EXTENT_NOT_ALIGNED |
                               LKL_FIEMAP_EXTENT_DATA_INLINE | LKL_FIEMAP_EXTENT_DATA_TAIL;

// Extents asked for per call: a small file has one or two.
constexpr unsigned kExtentsPerCall = 32;

}  // namespace

ExtentReader::~ExtentReader() { close(image_); }

bool ExtentReader::Suits(const char *root) {
  struct lkl_statfs fs;
  if (lkl_sys_statfs(root, &fs) < 0) return false;
  return fs.f_type == LKL_EXT4_SUPER_MAGIC && (fs.f_flags & 1 /* ST_RDONLY */);
}

long ExtentReader::Map(long fd, int64_t size) {
  runs_.clear();
  alignas(struct lkl_fiemap) char req[sizeof(struct lkl_fiemap) + kExtentsPerCall * sizeof(struct lkl_fiemap_extent)];
  auto *map = reinterpret_cast<struct lkl_fiemap *>(req);
  for (int64_t from = 0; from < size;) {
    memset(map, 0, sizeof(*map));
    map->fm_start = from;
    map->fm_length = size - from;
    map->fm_extent_count = kExtentsPerCall;
    long ret = lkl_sys_ioctl(fd, LKL_FS_IOC_FIEMAP, reinterpret_cast<unsigned long>(map));
    if (ret == -LKL_EOPNOTSUPP || ret == -LKL_ENOTTY) return 0;
    if (ret < 0) return ret;
    if (map->fm_mapped_extents == 0) break;  // a hole to the end
    for (unsigned i = 0; i < map->fm_mapped_extents; i++) {
      const struct lkl_fiemap_extent &x = map->fm_extents[i];
      if (x.fe_flags & kNotPlain) return 0;
      int64_t logical = x.fe_logical, len = x.fe_length;
      if (!runs_.empty() && logical < runs_.back().logical + runs_.back().len) return 0;  // never seen; not ours to guess
      runs_.push_back({logical, static_cast<int64_t>(x.fe_physical), len, (x.fe_flags & LKL_FIEMAP_EXTENT_UNWRITTEN) != 0});
      from = (x.fe_flags & LKL_FIEMAP_EXTENT_LAST) ? size : logical + len;
    }
  }
  return 1;
}

long ExtentReader::Read(char *buf, int64_t off, int64_t len) const {
  int64_t at = off, end = off + len;
  // The first run that ends after off.
  auto run = std::upper_bound(runs_.begin(), runs_.end(), off, [](int64_t o, const Run &r) { return o < r.logical + r.len; });
  while (at < end) {
    if (run == runs_.end() || run->logical >= end) {
      memset(buf + (at - off), 0, end - at);
      break;
    }
    if (run->logical > at) {
      memset(buf + (at - off), 0, run->logical - at);
      at = run->logical;
    }
    int64_t stop = std::min(end, run->logical + run->len);
    if (run->zeros) {
      memset(buf + (at - off), 0, stop - at);
      at = stop;
    }
    while (at < stop) {
      ssize_t n = pread(image_, buf + (at - off), stop - at, start_ + run->physical + (at - run->logical));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return -errno;
      if (n == 0) return -EIO;  // past the image's end: it is not what the filesystem says
      at += n;
    }
    ++run;
  }
  return 0;
}

}  // namespace lklfs
