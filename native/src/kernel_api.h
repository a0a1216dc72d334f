// SPDX-License-Identifier: GPL-2.0
// The kernel library's API and the uapi definitions the binding uses
// (prefixed LKL_/lkl_, see lkl-build/scripts/install_headers.py).
#pragma once

#include <lkl.h>
#include <lkl_host.h>
#include <lkl/asm/errno.h>
#include <lkl/asm/stat.h>
#include <lkl/linux/fcntl.h>
#include <lkl/linux/fs.h>
#include <lkl/linux/mount.h>
#include <lkl/linux/stat.h>
#include <lkl/asm/statfs.h>
#include <lkl/linux/time_types.h>
