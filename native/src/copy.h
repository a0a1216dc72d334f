// SPDX-License-Identifier: GPL-2.0
// Whole-file copies between host and kernel (copy.cc), for batch.cc too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "queue.h"

namespace lklfs {

// After cancel() (an interrupted job), copies and batches stop at their
// next piece or op with -ECANCELED; what is half copied stays as it is.
bool Cancelled();
void CancelAll();

// Host file -> new kernel file (O_EXCL), holes kept: bytes or -errno.
long CopyFileIn(const std::string &host, const std::string &path, long mode, Failure *failure);
// Kernel file -> new host file (O_EXCL), holes kept: bytes or -errno.
long CopyFileOut(const std::string &path, const std::string &host, long mode, Failure *failure);
// A piece of a file's data: [off, off + len), at most 1 MiB long.
struct Piece {
  int64_t off;
  size_t len;
};

// The data extents in the first size bytes of open kernel file in, cut
// into pieces; holes are left out (SEEK_DATA/SEEK_HOLE).
std::vector<Piece> KernelPieces(long in, int64_t size);
// A whole piece read from kernel file in or written to host file out: 0
// or a negative errno (reading, -EIO: the file shrank).
long ReadKernelPiece(long in, char *buf, const Piece &p);
long WriteHostPiece(int out, const char *buf, const Piece &p);

// The first size bytes of open kernel file in -> open host file out, holes
// kept (tree_out.cc): 0 or -errno, *failure naming the side (src, dst).
long CopyDataOut(long in, int out, int64_t size, Failure *failure, const std::string &src, const std::string &dst);

}  // namespace lklfs
