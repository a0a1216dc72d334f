// SPDX-License-Identifier: GPL-2.0
/*
 * bigwrite IMAGE FSTYPE MIB: writes MIB MiB of a known pattern to /big on the
 * image with 1 MiB writes, fsyncs, prints "synced" and waits to be killed
 * (the test sends SIGKILL: no unmount, no halt).
 */
#include <unistd.h>

#include "check.h"
#include <lkl/linux/fcntl.h>

#define CHUNK (1 << 20)

int main(int argc, char **argv)
{
	struct lkl_disk disk;
	char mnt[64], path[96];
	char *buf = malloc(CHUNK);
	long i, n, fd, mib;
	int id;

	if (argc != 4) {
		fprintf(stderr, "usage: bigwrite IMAGE FSTYPE MIB\n");
		return 2;
	}
	mib = atol(argv[3]);
	id = attach_and_boot(argv[1], 0, "mem=128M quiet", &disk);
	if (id < 0 || !buf ||
	    lkl_mount_dev(id, 0, argv[2], 0, NULL, mnt, sizeof(mnt))) {
		printf("setup failed\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/big", mnt);
	fd = lkl_sys_openat(LKL_AT_FDCWD, path, LKL_O_CREAT | LKL_O_WRONLY, 0644);
	if (fd < 0) {
		printf("open: %s\n", lkl_strerror(fd));
		return 1;
	}
	for (i = 0; i < mib; i++) {
		/* Every MiB differs, so misplaced blocks cannot go unnoticed. */
		memset(buf, (int)(i & 0xff), CHUNK);
		memcpy(buf, &i, sizeof(i));
		n = lkl_sys_write(fd, buf, CHUNK);
		if (n != CHUNK) {
			printf("write %ld: %s\n", i, lkl_strerror(n));
			return 1;
		}
	}
	n = lkl_sys_fsync(fd);
	printf(n ? "fsync: %s\n" : "synced\n", lkl_strerror(n));
	fflush(stdout);
	for (;;)
		pause();
}
