// SPDX-License-Identifier: GPL-2.0
// A file's data read straight from the image file on the host, where the
// filesystem says its blocks are (FS_IOC_FIEMAP), instead of through the
// kernel: one copy out of the host's page cache, where the kernel's way
// is a bio, a host read into a page of the kernel's, a copy out of that
// page and the page's eviction (about three times the time, measured on
// fs2tar of a tree of small files).
//
// Only where that is the same data: a filesystem whose extents are byte
// offsets on its one device (ext2/3/4 and XFS, whose realtime device an
// image cannot have; btrfs's are its own logical addresses), mounted
// read-only (nothing is waiting in the kernel's cache to be written), and
// extents that hold the file's bytes as they are (not inline, encoded,
// encrypted, or of unknown place). A file with any other extent is read
// by the kernel as before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lklfs {

class ExtentReader {
 public:
  // image: the image's host descriptor (the reader's own, closed with it);
  // start: where the filesystem begins in it, in bytes.
  ExtentReader(int image, int64_t start) : image_(image), start_(start) {}
  ~ExtentReader();
  ExtentReader(const ExtentReader &) = delete;
  ExtentReader &operator=(const ExtentReader &) = delete;

  // Whether the filesystem mounted read-only at the kernel's path root is
  // one whose files can be read this way.
  static bool Suits(const char *root);

  // Maps the kernel file open as fd, of size bytes: 1 when all its data
  // can be read here (Read then reads it), 0 when the kernel must read
  // it, or -errno.
  long Map(long fd, int64_t size);

  // A read of the image on the host: len bytes at its offset from, to to.
  struct Copy {
    char *to;
    int64_t from, len;
  };

  // [off, off + len) of the file last mapped into buf: the holes and the
  // allocated but unwritten ranges zeroed now, the rest added to copies,
  // for Run to read (now, or once the caller is done with the kernel).
  void Plan(char *buf, int64_t off, int64_t len, std::vector<Copy> *copies) const;

  // Reads copies: 0, or -errno with *failed the index of the copy that failed.
  long Run(const std::vector<Copy> &copies, size_t *failed) const;

 private:
  struct Span {
    int64_t logical, physical, len;
    bool zeros;  // allocated, never written: reads as zeros
  };

  const int image_;
  const int64_t start_;
  std::vector<Span> spans_;  // in file order
};

}  // namespace lklfs
