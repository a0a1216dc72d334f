// SPDX-License-Identifier: GPL-2.0
// Whole-file copies between host and kernel (copy.cc), for batch.cc too.
#pragma once

#include <cstdint>
#include <string>

#include "queue.h"

namespace lklfs {

// After cancel() (an interrupted job), copies and batches stop at their
// next piece or op with -ECANCELED; what is half copied stays as it is.
bool Cancelled();
void CancelAll();

// Host file -> new kernel file (O_EXCL), holes kept: bytes or -errno.
long CopyFileIn(const std::string &host, const std::string &path, long mode, Failure *failure);
// An open host file's first size bytes into open kernel file fd, holes
// kept: 0 or -errno (*failure names the side; host and path are theirs).
long CopyHostFdIn(int in, long fd, int64_t size, Failure *failure, const std::string &host, const std::string &path);
// Kernel file -> new host file (O_EXCL), holes kept: bytes or -errno.
long CopyFileOut(const std::string &path, const std::string &host, long mode, Failure *failure);

}  // namespace lklfs
