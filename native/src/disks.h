// SPDX-License-Identifier: GPL-2.0
// The images attached as disks (kernel.cc), for code that reads one on the host.
#pragma once

namespace lklfs {

// A host descriptor of disk id's image of the caller's own (a dup, to
// close), or -errno.
int DupDiskImage(long id);

}  // namespace lklfs
