// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel library benchmark; one measurement per process, because the kernel
 * boots once per process and cannot be restarted. Prints one JSON line.
 *
 *   kbench boot [SYSCALLS]     boot_ms, syscall_ns (getpid), halt_ms
 *   kbench io IMAGE SIZE_MIB   write_mb_s, read_mb_s on an ext4 image
 *
 * lkl-build/bench/run.mjs builds this, runs it many times and takes medians.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lkl.h>
#include <lkl_host.h>
#include <lkl/linux/fcntl.h>

#define CHUNK (1 << 20)
#define IO_CMDLINE "mem=256M lkl_prefault quiet"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int fail(const char *what, long err)
{
	fprintf(stderr, "kbench: %s: %s\n", what, lkl_strerror(err));
	return 1;
}

static int bench_boot(long calls)
{
	double t0, boot, sys, halt;
	long i, ret;

	lkl_init(&lkl_host_ops);
	t0 = now_ms();
	ret = lkl_start_kernel("mem=128M quiet");
	boot = now_ms() - t0;
	if (ret)
		return fail("boot", ret);

	/* Not timed: a thread's first system call binds it to a kernel task. */
	lkl_sys_getpid();
	t0 = now_ms();
	for (i = 0; i < calls; i++)
		lkl_sys_getpid();
	sys = now_ms() - t0;

	t0 = now_ms();
	ret = lkl_sys_halt();
	halt = now_ms() - t0;
	if (ret)
		return fail("halt", ret);
	lkl_cleanup();

	printf("{\"boot_ms\":%.3f,\"syscall_ns\":%.1f,\"halt_ms\":%.3f,\"syscalls\":%ld}\n",
	       boot, sys * 1e6 / calls, halt, calls);
	return 0;
}

/*
 * Reads the file back; each MiB starts with its index (see bench_io), which
 * catches a short or misplaced read without costing a full compare. The
 * time taken goes to *ms.
 */
static long read_back(const char *path, char *buf, long mib, double *ms)
{
	double t0 = now_ms();
	long fd, n, i;

	fd = lkl_sys_openat(LKL_AT_FDCWD, path, LKL_O_RDONLY, 0);
	if (fd < 0)
		return fd;
	for (i = 0;; i++) {
		n = lkl_sys_read(fd, buf, CHUNK);
		if (n <= 0)
			break;
		if (n != CHUNK || memcmp(buf, &i, sizeof(i))) {
			n = -EIO;
			break;
		}
	}
	lkl_sys_close(fd);
	*ms = now_ms() - t0;
	if (n < 0)
		return n;
	return i == mib ? 0 : -EIO;
}

/*
 * Unmount + mount empties the kernel's page cache. With drop_fd >= 0 (the
 * image), the image's pages also leave the host's page cache in between,
 * so that the next reads come from the disk.
 */
static long remount(int id, char *mnt, size_t len, int drop_fd)
{
	long ret = lkl_umount_dev(id, 0, 0, 1000);

	if (ret)
		return ret;
	if (drop_fd >= 0) {
		fdatasync(drop_fd);
		posix_fadvise(drop_fd, 0, 0, POSIX_FADV_DONTNEED);
	}
	return lkl_mount_dev(id, 0, "ext4", 0, NULL, mnt, len);
}

static int bench_io(const char *image, long mib)
{
	struct lkl_disk disk = { 0 };
	char mnt[64], path[96], *buf = malloc(CHUNK);
	double t0, t_write, t_fsync, t_warm, t_read;
	long fd, i, ret;
	int id;

	disk.fd = open(image, O_RDWR);
	if (disk.fd < 0 || !buf) {
		perror(image);
		return 1;
	}
	lkl_init(&lkl_host_ops);
	id = lkl_disk_add(&disk);
	if (id < 0)
		return fail("disk add", id);
	/*
	 * 256M: ample for ext4 and writeback, and well below the runner's
	 * 1 GiB file, so the page cache cannot hold the whole write.
	 * lkl_prefault, as for any bulk job: see arch/lkl/kernel/mem.c.
	 */
	ret = lkl_start_kernel(IO_CMDLINE);
	if (ret)
		return fail("boot", ret);
	ret = lkl_mount_dev(id, 0, "ext4", 0, NULL, mnt, sizeof(mnt));
	if (ret)
		return fail("mount", ret);
	snprintf(path, sizeof(path), "%s/bench", mnt);

	fd = lkl_sys_openat(LKL_AT_FDCWD, path,
			    LKL_O_CREAT | LKL_O_WRONLY | LKL_O_TRUNC, 0644);
	if (fd < 0)
		return fail("create", fd);
	memset(buf, 0x5a, CHUNK);
	t0 = now_ms();
	for (i = 0; i < mib; i++) {
		memcpy(buf, &i, sizeof(i));
		ret = lkl_sys_write(fd, buf, CHUNK);
		if (ret != CHUNK)
			return fail("write", ret < 0 ? ret : -EIO);
	}
	t_write = now_ms() - t0;
	ret = lkl_sys_fsync(fd);
	t_fsync = now_ms() - t0 - t_write;
	if (ret)
		return fail("fsync", ret);
	lkl_sys_close(fd);

	/*
	 * The image's pages are still in the host's page cache: this first
	 * read shows the library's own cost (kernel + host copies, no disk).
	 */
	ret = remount(id, mnt, sizeof(mnt), -1);
	if (ret)
		return fail("remount", ret);
	ret = read_back(path, buf, mib, &t_warm);
	if (ret)
		return fail("read (host cache)", ret);

	/* The real read: every block from the disk, as for dd's reference. */
	ret = remount(id, mnt, sizeof(mnt), disk.fd);
	if (ret)
		return fail("remount", ret);
	ret = read_back(path, buf, mib, &t_read);
	if (ret)
		return fail("read", ret);

	ret = lkl_umount_dev(id, 0, 0, 1000);
	if (ret)
		return fail("umount", ret);
	ret = lkl_sys_halt();
	if (ret)
		return fail("halt", ret);
	lkl_cleanup();
	close(disk.fd);

	printf("{\"write_mb_s\":%.1f,\"read_mb_s\":%.1f,\"read_hostcache_mb_s\":%.1f,"
	       "\"write_ms\":%.1f,\"fsync_ms\":%.1f,\"read_ms\":%.1f,\"mib\":%ld,"
	       "\"cmdline\":\"%s\"}\n",
	       mib * 1e3 / (t_write + t_fsync), mib * 1e3 / t_read,
	       mib * 1e3 / t_warm, t_write, t_fsync, t_read, mib, IO_CMDLINE);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && argc <= 3 && !strcmp(argv[1], "boot"))
		return bench_boot(argc == 3 ? atol(argv[2]) : 1000000);
	if (argc == 4 && !strcmp(argv[1], "io") && atol(argv[3]) > 0)
		return bench_io(argv[2], atol(argv[3]));
	fprintf(stderr, "usage: kbench boot [SYSCALLS] | kbench io IMAGE SIZE_MIB\n");
	return 2;
}
