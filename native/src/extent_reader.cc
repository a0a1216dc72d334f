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
  return (fs.f_type == LKL_EXT4_SUPER_MAGIC || fs.f_type == LKL_XFS_SUPER_MAGIC) && (fs.f_flags & 1 /* ST_RDONLY */);
}

long ExtentReader::Map(long fd, int64_t size) {
  spans_.clear();
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
      if (!spans_.empty() && logical < spans_.back().logical + spans_.back().len) return 0;  // never seen; not ours to guess
      spans_.push_back({logical, static_cast<int64_t>(x.fe_physical), len, (x.fe_flags & LKL_FIEMAP_EXTENT_UNWRITTEN) != 0});
      from = (x.fe_flags & LKL_FIEMAP_EXTENT_LAST) ? size : logical + len;
    }
  }
  return 1;
}

void ExtentReader::Plan(char *buf, int64_t off, int64_t len, std::vector<Copy> *copies) const {
  int64_t at = off, end = off + len;
  // The first span that ends after off.
  auto span = std::upper_bound(spans_.begin(), spans_.end(), off, [](int64_t o, const Span &r) { return o < r.logical + r.len; });
  for (; at < end; ++span) {
    int64_t data = span == spans_.end() ? end : std::min(end, span->logical);
    if (data > at) {
      memset(buf + (at - off), 0, data - at);
      at = data;
    }
    if (at == end) break;
    int64_t stop = std::min(end, span->logical + span->len);
    if (span->zeros)
      memset(buf + (at - off), 0, stop - at);
    else
      copies->push_back({buf + (at - off), start_ + span->physical + (at - span->logical), stop - at});
    at = stop;
  }
}

long ExtentReader::Run(const std::vector<Copy> &copies, size_t *failed) const {
  for (size_t i = 0; i < copies.size(); i++) {
    const Copy &c = copies[i];
    *failed = i;
    for (int64_t done = 0; done < c.len;) {
      ssize_t n = pread(image_, c.to + done, c.len - done, c.from + done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return -errno;
      if (n == 0) return -EIO;  // past the image's end: it is not what the filesystem says
      done += n;
    }
  }
  return 0;
}

}  // namespace lklfs
