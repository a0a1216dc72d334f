// SPDX-License-Identifier: GPL-2.0
/*
 * mountcheck IMAGE FSTYPE PART rw|ro [OPTIONS]: attaches the image (read-only
 * for "ro"), tries to mount it and prints "mount: <errno or 0> <text>". Used
 * to check that bad input gives an error, not a hang or a crash.
 */
#include <unistd.h>

#include "check.h"
#include <lkl/linux/mount.h>

int main(int argc, char **argv)
{
	struct lkl_disk disk;
	char mnt[64];
	long ret;
	int ro, id;

	if (argc < 5) {
		fprintf(stderr, "usage: mountcheck IMAGE FSTYPE PART rw|ro [OPTIONS]\n");
		return 2;
	}
	ro = !strcmp(argv[4], "ro");
	id = attach_and_boot(argv[1], ro, "mem=64M loglevel=5", &disk);
	if (id < 0)
		return 1;
	ret = lkl_mount_dev(id, atoi(argv[3]), argv[2], ro ? LKL_MS_RDONLY : 0,
			    argc > 5 ? argv[5] : NULL, mnt, sizeof(mnt));
	printf("mount: %ld %s\n", ret, ret ? lkl_strerror(ret) : "ok");
	fflush(stdout);
	if (!ret) {
		ret = lkl_umount_dev(id, atoi(argv[3]), 0, 1000);
		printf("umount: %ld\n", ret);
	}
	ret = lkl_sys_halt();
	printf("halt: %ld\n", ret);
	close(disk.fd);
	return 0;
}
