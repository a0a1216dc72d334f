// SPDX-License-Identifier: GPL-2.0
/*
 * Boot, system calls from several host threads at once, halt, and a second
 * boot in the same process (which must fail cleanly). The random number
 * generator is seeded by the host at boot.
 * boot [EPOCH]: boots with lkl_epoch=EPOCH (the wall clock) and prints the
 * modification time of a file it creates as "mtime SECONDS".
 */
#include <pthread.h>

#include "check.h"
#include <lkl/linux/fcntl.h>
#include <lkl/linux/random.h>
#include <lkl/linux/stat.h>
#include <lkl/asm/stat.h>

#define THREADS 4
#define ROUNDS 200

static void *worker(void *arg)
{
	long id = (long)arg, bad = 0;
	char path[64], buf[64], back[64];
	int i;

	for (i = 0; i < ROUNDS; i++) {
		long fd, n;

		snprintf(path, sizeof(path), "/t%ld-%d", id, i);
		snprintf(buf, sizeof(buf), "thread %ld round %d", id, i);
		fd = lkl_sys_openat(LKL_AT_FDCWD, path,
				    LKL_O_CREAT | LKL_O_RDWR | LKL_O_TRUNC, 0600);
		if (fd < 0) {
			bad++;
			continue;
		}
		n = lkl_sys_write(fd, buf, strlen(buf));
		memset(back, 0, sizeof(back));
		if (n != (long)strlen(buf) ||
		    lkl_sys_pread64(fd, back, sizeof(back), 0) != n ||
		    strcmp(buf, back))
			bad++;
		lkl_sys_close(fd);
		if (lkl_sys_unlinkat(LKL_AT_FDCWD, path, 0))
			bad++;
	}
	return (void *)bad;
}

static void print_file_time(void)
{
	struct lkl_stat st;
	long fd = lkl_sys_openat(LKL_AT_FDCWD, "/clock", LKL_O_CREAT | LKL_O_WRONLY, 0600);

	CHECK("file for the clock", fd >= 0, "%s", lkl_strerror(fd));
	lkl_sys_close(fd);
	CHECK_CALL("stat for the clock", lkl_sys_newfstatat(LKL_AT_FDCWD, "/clock", &st, 0));
	printf("mtime %lld\n", (long long)st.lkl_st_mtime);
}

int main(int argc, char **argv)
{
	pthread_t threads[THREADS];
	long total_bad = 0, i, ret;
	char buf[16];

	CHECK("init", lkl_init(&lkl_host_ops) == 0, "lkl_init failed");
	if (argc > 1)
		ret = lkl_start_kernel("mem=64M quiet lkl_epoch=%s", argv[1]);
	else
		ret = lkl_start_kernel("mem=64M quiet");
	CHECK("boot", ret == 0, "lkl_start_kernel: %s", lkl_strerror(ret));
	if (ret)
		return 1;
	CHECK("running", lkl_is_running(), "lkl_is_running() is 0 after boot");

	ret = lkl_sys_getpid();
	CHECK("host threads are threads of pid 1", ret == 1, "getpid returned %ld", ret);
	print_file_time();
	/* Seeded by the host at boot: getrandom() does not have to wait. */
	ret = lkl_sys_getrandom(buf, sizeof(buf), LKL_GRND_NONBLOCK);
	CHECK("random numbers without waiting", ret == sizeof(buf), "getrandom: %ld", ret);

	for (i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, worker, (void *)i);
	for (i = 0; i < THREADS; i++) {
		void *bad;

		pthread_join(threads[i], &bad);
		total_bad += (long)bad;
	}
	CHECK("four threads at once", total_bad == 0,
	      "%ld of %d operations went wrong", total_bad, THREADS * ROUNDS);

	ret = lkl_sys_openat(LKL_AT_FDCWD, "/nonexistent", LKL_O_RDONLY, 0);
	CHECK("errors are negative errno", ret == -ENOENT, "got %ld", ret);

	ret = lkl_sys_halt();
	CHECK("halt", ret == 0, "lkl_sys_halt: %s", lkl_strerror(ret));
	CHECK("not running after halt", !lkl_is_running(), "still running");
	ret = lkl_sys_getpid();
	CHECK("calls after halt fail", ret == -ENODEV, "got %ld", ret);
	CHECK("cleanup", lkl_cleanup() == 0, "lkl_cleanup failed");

	ret = lkl_start_kernel("mem=64M");
	CHECK("second boot is refused", ret == -EALREADY, "got %ld", ret);
	return check_failures;
}
