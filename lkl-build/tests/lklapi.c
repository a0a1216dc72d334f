// SPDX-License-Identifier: GPL-2.0
/*
 * lklapi IMAGE: a program written against LKL's public API the way LKL
 * programs are written. It includes <lkl.h> and <lkl_host.h> and nothing
 * else of the library's, and uses the classic path-based calls
 * (lkl_sys_open, lkl_sys_mkdir, lkl_sys_stat, ...), lkl_mount_fs and the
 * directory streams. On the ext4 image IMAGE it leaves this tree, which
 * the jest test then reads with debugfs:
 *
 *   /dir         0750
 *   /dir/file    0604, uid 42 gid 43, "hello, lkl\n",
 *                atime 1000000000.5, mtime 1234567890.00025
 *   /dir/hard2   a second link to file
 *   /dir/link    symbolic link to "file"
 *   /dir/fifo    fifo 0644
 *   /dir/null    character device 1:3
 *   /dir/empty   0600, emptied by a second creat
 *
 * The steps run in order, as in LKL's own tests; each prints "ok NAME" or
 * "not ok NAME: why", and the exit status is the number of failures.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lkl.h>
#include <lkl_host.h>

_Static_assert(sizeof(lkl_long_t) == sizeof(long) &&
	       sizeof(lkl_ulong_t) == sizeof(unsigned long),
	       "lkl_long_t is the kernel's long");

static const char text[] = "hello, lkl\n";

static const char *image;
static struct lkl_disk disk;
static int disk_id = -1;
static unsigned int devt;
static char mnt[32];
static char why[256];

/* Records why a step failed; returns -1 for the step to return. */
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return -1;
}

#define EXPECT(call, want)						\
	do {								\
		lkl_long_t __got = (call);				\
		if (__got != (want))					\
			return fail("%s = %ld (%s), expected %ld", #call, \
				    (long)__got,			\
				    __got < 0 ? lkl_strerror(__got) : "", \
				    (long)(want));			\
	} while (0)

static int stat_ok(const char *path, struct lkl_stat *st)
{
	long ret = lkl_sys_stat(path, st);

	return ret ? fail("lkl_sys_stat(%s): %s", path, lkl_strerror(ret)) : 0;
}

static int step_disk_add(void)
{
	disk.fd = open(image, O_RDWR);
	if (disk.fd < 0)
		return fail("open %s: %s", image, strerror(errno));
	disk.ops = NULL;
	disk_id = lkl_disk_add(&disk);
	return disk_id < 0 ? fail("%s", lkl_strerror(disk_id)) : 0;
}

static int step_boot(void)
{
	EXPECT(lkl_start_kernel("mem=64M quiet"), 0);
	/* Modes below are exactly those asked for. */
	lkl_sys_umask(0);
	return 0;
}

static int step_mount_fs(void)
{
	char buf[4096];
	long fd, n;

	EXPECT(lkl_mount_fs("proc"), 0);
	EXPECT(lkl_mount_fs("proc"), 1);
	fd = lkl_sys_open("/proc/filesystems", LKL_O_RDONLY, 0);
	if (fd < 0)
		return fail("open /proc/filesystems: %s", lkl_strerror(fd));
	n = lkl_sys_read(fd, buf, sizeof(buf) - 1);
	lkl_sys_close(fd);
	buf[n > 0 ? n : 0] = 0;
	if (!strstr(buf, "\text4\n"))
		return fail("no ext4 in /proc/filesystems: %s", buf);

	EXPECT(lkl_mount_fs("nosuchfs"), -LKL_ENODEV);
	/* The directory it made for the failed mount is gone again. */
	EXPECT(lkl_sys_access("/nosuchfs", F_OK), -LKL_ENOENT);
	return 0;
}

static int step_umount(void)
{
	EXPECT(lkl_sys_umount("/proc", 0), 0);
	EXPECT(lkl_sys_open("/proc/filesystems", LKL_O_RDONLY, 0), -LKL_ENOENT);
	EXPECT(lkl_sys_rmdir("/proc"), 0);
	return 0;
}

static int step_mount_dev(void)
{
	struct lkl_stat st;

	EXPECT(lkl_get_virtio_blkdev(disk_id, 0, &devt), 0);
	EXPECT(lkl_mount_dev(disk_id, 0, "ext4", 0, NULL, mnt, sizeof(mnt)), 0);
	if (stat_ok(mnt, &st))
		return -1;
	if (st.st_dev != devt)
		return fail("%s is on device %#lx, the disk is %#x", mnt,
			    (unsigned long)st.st_dev, devt);
	EXPECT(lkl_sys_chdir(mnt), 0);
	return 0;
}

static int step_mkdir(void)
{
	struct lkl_stat st;

	EXPECT(lkl_sys_mkdir("dir", 0750), 0);
	EXPECT(lkl_sys_mkdir("dir", 0750), -LKL_EEXIST);
	if (stat_ok("dir", &st))
		return -1;
	if (!LKL_S_ISDIR(st.st_mode) || (st.st_mode & 07777) != 0750)
		return fail("dir has mode %o", st.st_mode);
	return 0;
}

static int step_open(void)
{
	char buf[64] = { 0 };
	struct lkl_stat st;
	long fd;

	EXPECT(lkl_sys_open("dir/none", LKL_O_RDONLY, 0), -LKL_ENOENT);
	fd = lkl_sys_open("dir/file", LKL_O_CREAT | LKL_O_EXCL | LKL_O_RDWR, 0640);
	if (fd < 0)
		return fail("open dir/file: %s", lkl_strerror(fd));
	EXPECT(lkl_sys_open("dir/file", LKL_O_CREAT | LKL_O_EXCL | LKL_O_RDWR, 0640),
	       -LKL_EEXIST);
	EXPECT(lkl_sys_write(fd, text, strlen(text)), (long)strlen(text));
	EXPECT(lkl_sys_lseek(fd, 0, LKL_SEEK_SET), 0);
	EXPECT(lkl_sys_read(fd, buf, sizeof(buf)), (long)strlen(text));
	if (strcmp(buf, text))
		return fail("read back \"%s\"", buf);
	EXPECT(lkl_sys_newfstat(fd, &st), 0);
	if (st.st_mode != (LKL_S_IFREG | 0640) || st.st_size != (long)strlen(text))
		return fail("fstat: mode %o size %lld", st.st_mode,
			    (long long)st.st_size);
	EXPECT(lkl_sys_close(fd), 0);
	return 0;
}

static int step_creat(void)
{
	struct lkl_stat st;
	char c;
	long fd;

	fd = lkl_sys_creat("dir/empty", 0600);
	if (fd < 0)
		return fail("creat: %s", lkl_strerror(fd));
	EXPECT(lkl_sys_write(fd, "x", 1), 1);
	/* creat opens for writing only. */
	EXPECT(lkl_sys_read(fd, &c, 1), -LKL_EBADF);
	EXPECT(lkl_sys_close(fd), 0);
	fd = lkl_sys_creat("dir/empty", 0600);
	if (fd < 0)
		return fail("creat again: %s", lkl_strerror(fd));
	EXPECT(lkl_sys_close(fd), 0);
	if (stat_ok("dir/empty", &st))
		return -1;
	if (st.st_mode != (LKL_S_IFREG | 0600) || st.st_size != 0)
		return fail("mode %o size %lld", st.st_mode, (long long)st.st_size);
	return 0;
}

static int step_symlink(void)
{
	struct lkl_stat file, link;
	char buf[16] = { 0 };

	EXPECT(lkl_sys_symlink("file", "dir/link"), 0);
	EXPECT(lkl_sys_readlink("dir/link", buf, sizeof(buf)), 4);
	if (strcmp(buf, "file"))
		return fail("readlink: \"%s\"", buf);
	EXPECT(lkl_sys_lstat("dir/link", &link), 0);
	if (!LKL_S_ISLNK(link.st_mode))
		return fail("lstat: mode %o", link.st_mode);
	EXPECT(lkl_sys_fstatat(LKL_AT_FDCWD, "dir/link", &link,
			       LKL_AT_SYMLINK_NOFOLLOW), 0);
	if (!LKL_S_ISLNK(link.st_mode))
		return fail("fstatat: mode %o", link.st_mode);
	if (stat_ok("dir/link", &link) || stat_ok("dir/file", &file))
		return -1;
	if (link.st_ino != file.st_ino)
		return fail("stat follows the link to inode %lu, file is %lu",
			    (unsigned long)link.st_ino, (unsigned long)file.st_ino);
	return 0;
}

static int step_link(void)
{
	struct lkl_stat st;

	EXPECT(lkl_sys_link("dir/file", "dir/hard"), 0);
	EXPECT(lkl_sys_rename("dir/hard", "dir/hard2"), 0);
	EXPECT(lkl_sys_access("dir/hard", F_OK), -LKL_ENOENT);
	EXPECT(lkl_sys_access("dir/hard2", R_OK | W_OK), 0);
	if (stat_ok("dir/hard2", &st))
		return -1;
	if (st.st_nlink != 2)
		return fail("%lu links", (unsigned long)st.st_nlink);
	return 0;
}

static int step_chmod_chown(void)
{
	struct lkl_stat st;

	EXPECT(lkl_sys_chmod("dir/file", 0604), 0);
	/* chown follows the link; the link itself stays root's. */
	EXPECT(lkl_sys_chown("dir/link", 42, 43), 0);
	if (stat_ok("dir/file", &st))
		return -1;
	if (st.st_mode != (LKL_S_IFREG | 0604) || st.st_uid != 42 || st.st_gid != 43)
		return fail("mode %o owner %u:%u", st.st_mode, st.st_uid, st.st_gid);
	EXPECT(lkl_sys_lstat("dir/link", &st), 0);
	if (st.st_uid != 0)
		return fail("the link was chowned to %u", st.st_uid);
	return 0;
}

static int step_mknod(void)
{
	struct lkl_stat st;

	EXPECT(lkl_sys_mknod("dir/fifo", LKL_S_IFIFO | 0644, 0), 0);
	EXPECT(lkl_sys_mknod("dir/null", LKL_S_IFCHR | 0666, LKL_MKDEV(1, 3)), 0);
	EXPECT(lkl_sys_lstat("dir/fifo", &st), 0);
	if (!LKL_S_ISFIFO(st.st_mode))
		return fail("fifo has mode %o", st.st_mode);
	EXPECT(lkl_sys_lstat("dir/null", &st), 0);
	if (!LKL_S_ISCHR(st.st_mode) || st.st_rdev != LKL_MKDEV(1, 3))
		return fail("null has mode %o rdev %#lx", st.st_mode,
			    (unsigned long)st.st_rdev);
	return 0;
}

static int step_utimes(void)
{
	struct lkl_timeval tv[2] = {
		{ .tv_sec = 1000000000, .tv_usec = 500000 },
		{ .tv_sec = 1234567890, .tv_usec = 250 },
	};
	struct lkl_stat st;

	EXPECT(lkl_sys_utimes("dir/file", tv), 0);
	if (stat_ok("dir/file", &st))
		return -1;
	if (st.lkl_st_atime != 1000000000 || st.st_atime_nsec != 500000000 ||
	    st.lkl_st_mtime != 1234567890 || st.st_mtime_nsec != 250000)
		return fail("atime %ld.%09lu mtime %ld.%09lu", (long)st.lkl_st_atime,
			    (unsigned long)st.st_atime_nsec, (long)st.lkl_st_mtime,
			    (unsigned long)st.st_mtime_nsec);
	tv[0].tv_usec = 1000000;
	EXPECT(lkl_sys_utimes("dir/file", tv), -LKL_EINVAL);

	/* No times: now, which is the host's clock. */
	EXPECT(lkl_sys_utimes("dir/empty", NULL), 0);
	if (stat_ok("dir/empty", &st))
		return -1;
	if (st.lkl_st_mtime < time(NULL) - 60 || st.lkl_st_mtime > time(NULL) + 60)
		return fail("mtime %ld is not now", (long)st.lkl_st_mtime);
	return 0;
}

static int step_unlink_rmdir(void)
{
	struct lkl_stat st;
	long fd;

	EXPECT(lkl_sys_mkdir("dir/sub", 0700), 0);
	fd = lkl_sys_creat("dir/sub/x", 0600);
	if (fd < 0)
		return fail("creat dir/sub/x: %s", lkl_strerror(fd));
	lkl_sys_close(fd);
	EXPECT(lkl_sys_rmdir("dir/sub"), -LKL_ENOTEMPTY);
	EXPECT(lkl_sys_unlink("dir/sub"), -LKL_EISDIR);
	EXPECT(lkl_sys_unlink("dir/sub/x"), 0);
	EXPECT(lkl_sys_rmdir("dir/sub"), 0);
	EXPECT(lkl_sys_stat("dir/sub", &st), -LKL_ENOENT);
	return 0;
}

static int step_readdir(void)
{
	static const char *const want[] = {
		".", "..", "file", "hard2", "link", "fifo", "null", "empty",
	};
	const int nwant = sizeof(want) / sizeof(want[0]);
	struct lkl_linux_dirent64 *de;
	struct lkl_dir *dir;
	int err = -12345, seen = 0, i;
	long fd;

	dir = lkl_opendir("dir", &err);
	if (!dir || err)
		return fail("lkl_opendir: %p, err %d", (void *)dir, err);
	while ((de = lkl_readdir(dir))) {
		for (i = 0; i < nwant && strcmp(want[i], de->d_name); i++)
			;
		if (i == nwant)
			return fail("unexpected entry %s", de->d_name);
		seen |= 1 << i;
	}
	if (lkl_errdir(dir))
		return fail("lkl_readdir: %s", lkl_strerror(lkl_errdir(dir)));
	if (seen != (1 << nwant) - 1)
		return fail("entries seen: %#x", seen);
	EXPECT(lkl_closedir(dir), 0);

	dir = lkl_opendir("dir/none", &err);
	if (dir || err != -LKL_ENOENT)
		return fail("opendir dir/none: %p, err %d", (void *)dir, err);

	fd = lkl_sys_open("dir", LKL_O_RDONLY | LKL_O_DIRECTORY, 0);
	if (fd < 0)
		return fail("open dir: %s", lkl_strerror(fd));
	err = -12345;
	dir = lkl_fdopendir(fd, &err);
	if (!dir || err || lkl_dirfd(dir) != fd)
		return fail("lkl_fdopendir: %p, err %d", (void *)dir, err);
	for (i = 0; lkl_readdir(dir); i++)
		;
	if (i != nwant)
		return fail("lkl_fdopendir: %d entries", i);
	EXPECT(lkl_closedir(dir), 0);
	return 0;
}

static void fd_set_add(lkl_fd_set *set, int fd)
{
	const int bits = 8 * sizeof(set->fds_bits[0]);

	set->fds_bits[fd / bits] |= (lkl_ulong_t)1 << (fd % bits);
}

static int step_pipe_poll_select(void)
{
	struct lkl_pollfd pfd = { .events = LKL_POLLIN };
	struct lkl_timeval tv = { 0 };
	lkl_fd_set set;
	int fds[2];
	char c;

	EXPECT(lkl_sys_pipe(fds), 0);
	pfd.fd = fds[0];
	EXPECT(lkl_sys_poll(&pfd, 1, 0), 0);
	EXPECT(lkl_sys_write(fds[1], "p", 1), 1);
	EXPECT(lkl_sys_poll(&pfd, 1, 1000), 1);
	if (!(pfd.revents & LKL_POLLIN))
		return fail("poll: revents %#x", pfd.revents);
	/* A negative timeout waits for ever; the byte is there already. */
	EXPECT(lkl_sys_poll(&pfd, 1, -1), 1);

	memset(&set, 0, sizeof(set));
	fd_set_add(&set, fds[0]);
	EXPECT(lkl_sys_select(fds[0] + 1, &set, NULL, NULL, NULL), 1);
	EXPECT(lkl_sys_select(fds[0] + 1, &set, NULL, NULL, &tv), 1);
	EXPECT(lkl_sys_read(fds[0], &c, 1), 1);
	/* Nothing to read: select waits out its timeout and says so. */
	fd_set_add(&set, fds[0]);
	tv.tv_usec = 20000;
	EXPECT(lkl_sys_select(fds[0] + 1, &set, NULL, NULL, &tv), 0);
	if (tv.tv_sec || tv.tv_usec)
		return fail("select left %ld.%06ld s", (long)tv.tv_sec, (long)tv.tv_usec);
	EXPECT(lkl_sys_close(fds[0]), 0);
	EXPECT(lkl_sys_close(fds[1]), 0);
	return 0;
}

static int step_umount_dev(void)
{
	EXPECT(lkl_sys_chdir("/"), 0);
	EXPECT(lkl_umount_dev(disk_id, 0, 0, 1000), 0);
	EXPECT(lkl_disk_remove(disk), 0);
	return 0;
}

static int step_halt(void)
{
	EXPECT(lkl_sys_halt(), 0);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(void);
} steps[] = {
	{ "disk add", step_disk_add },
	{ "boot", step_boot },
	{ "lkl_mount_fs", step_mount_fs },
	{ "lkl_sys_umount", step_umount },
	{ "lkl_mount_dev", step_mount_dev },
	{ "mkdir", step_mkdir },
	{ "open, write, read, fstat", step_open },
	{ "creat", step_creat },
	{ "symlink, readlink, lstat, fstatat", step_symlink },
	{ "link, rename, access", step_link },
	{ "chmod, chown", step_chmod_chown },
	{ "mknod", step_mknod },
	{ "utimes", step_utimes },
	{ "unlink, rmdir", step_unlink_rmdir },
	{ "opendir, readdir", step_readdir },
	{ "pipe, poll, select", step_pipe_poll_select },
	{ "umount", step_umount_dev },
	{ "halt", step_halt },
};

int main(int argc, char **argv)
{
	unsigned int i;
	int failed = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: lklapi EXT4_IMAGE\n");
		return 2;
	}
	image = argv[1];
	lkl_init(&lkl_host_ops);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (steps[i].run()) {
			printf("not ok %s: %s\n", steps[i].name, why);
			failed++;
			/* Later steps build on earlier ones. */
			if (i < 2)
				break;
		} else {
			printf("ok %s\n", steps[i].name);
		}
		fflush(stdout);
	}
	lkl_cleanup();
	return failed;
}
