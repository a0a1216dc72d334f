/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tiny reporting helpers for the kernel library's test programs: each check
 * prints "ok NAME" or "not ok NAME: why", and the program's exit status is
 * the number of failures (the jest tests read both).
 */
#ifndef LKL_TESTS_CHECK_H
#define LKL_TESTS_CHECK_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lkl.h>
#include <lkl_host.h>

static int check_failures __attribute__((unused));

#define CHECK(name, cond, ...)						\
	do {								\
		if (cond) {						\
			printf("ok %s\n", name);			\
		} else {						\
			printf("not ok %s: ", name);			\
			printf(__VA_ARGS__);				\
			printf("\n");					\
			check_failures++;				\
		}							\
		fflush(stdout);						\
	} while (0)

/* A system call that must succeed; its result is returned. */
#define CHECK_CALL(name, call)						\
	({								\
		long __r = (call);					\
		CHECK(name, __r >= 0, "%s (%ld)", lkl_strerror(__r), __r); \
		__r;							\
	})

/*
 * Opens IMAGE (read-only if ro), attaches it as a disk and boots with
 * cmdline. Returns the disk id, or -1 after reporting what failed; the
 * image's fd is left in disk->fd.
 */
static inline int attach_and_boot(const char *image, int ro, const char *cmdline,
				  struct lkl_disk *disk)
{
	long ret;
	int id;

	memset(disk, 0, sizeof(*disk));
	disk->fd = open(image, ro ? O_RDONLY : O_RDWR);
	if (disk->fd < 0) {
		perror(image);
		return -1;
	}
	lkl_init(&lkl_host_ops);
	id = lkl_disk_add(disk);
	CHECK("disk add", id >= 0, "%s", lkl_strerror(id));
	ret = lkl_start_kernel("%s", cmdline);
	CHECK("boot", ret == 0, "%s", lkl_strerror(ret));
	return id >= 0 && !ret ? id : -1;
}

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#endif
