// SPDX-License-Identifier: GPL-2.0
/*
 * Filesystem operations through the kernel on an image made by the host's
 * mkfs: fsops IMAGE FSTYPE PART FEATURES
 *
 * FEATURES is a comma list of what the filesystem supports beyond the
 * basics (symlink, hardlink, xattr, secxattr, acl, chown, mknod, nsec);
 * "ro" mounts the image read-only and only reads what the test put there:
 * /hello.txt and /big.txt ("line 0\n" to "line 19999\n", large enough to
 * be compressed); "dirty" exits right after the writes, leaving the
 * filesystem mounted (an ext4 journal that needs recovery).
 * The rw run leaves a known tree for host tools to inspect:
 *   /dir/renamed (1 MiB pattern), /dir/link -> renamed, /dir/hard,
 *   /dir/fifo, and on /dir/renamed: user.lklfs xattr "hello", the
 *   security.selinux xattr "system_u:object_r:etc_t:s0" (NUL included, as
 *   SELinux stores it), the access ACL
 *   user::rw-,user:1000:r--,group::r--,mask::r--,other::r--,
 *   mtime 1234567890.123456789 and owner 1234:5678.
 */
#include <unistd.h>

#include "check.h"
#include <lkl/linux/fcntl.h>
#include <lkl/linux/stat.h>
#include <lkl/linux/mount.h>
#include <lkl/linux/time_types.h>
#include <lkl/asm/stat.h>

#define FILE_SIZE (1 << 20)

static int has(const char *features, const char *f)
{
	const char *p = strstr(features, f);
	size_t n = strlen(f);

	return p && (p == features || p[-1] == ',') && (p[n] == 0 || p[n] == ',');
}

static void pattern(char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (char)(i * 7 + i / 4096);
}

#define BIG_LINES 20000

/* Reads fd to the end and compares it with "line 0\n" ... "line N-1\n". */
static int read_lines(long fd, int lines)
{
	static char got[1 << 16];
	char want[32];
	long n, have = 0, pos = 0;
	int i, len;

	for (i = 0; i < lines; i++) {
		len = snprintf(want, sizeof(want), "line %d\n", i);
		if (have - pos < len) {
			memmove(got, got + pos, have - pos);
			have -= pos;
			pos = 0;
			n = lkl_sys_read(fd, got + have, sizeof(got) - have);
			if (n < 0)
				return 0;
			have += n;
		}
		if (have - pos < len || memcmp(got + pos, want, len))
			return 0;
		pos += len;
	}
	return pos == have && lkl_sys_read(fd, got, 1) == 0;
}

static void read_only_checks(const char *mnt)
{
	char path[128], buf[64] = { 0 };
	struct lkl_stat st;
	struct lkl_dir *dir;
	struct lkl_linux_dirent64 *de;
	int err, found = 0;
	long fd, n;

	snprintf(path, sizeof(path), "%s/hello.txt", mnt);
	fd = CHECK_CALL("open", lkl_sys_openat(LKL_AT_FDCWD, path, LKL_O_RDONLY, 0));
	n = lkl_sys_read(fd, buf, sizeof(buf) - 1);
	CHECK("read", n == 14 && !strcmp(buf, "hello, kernel\n"), "read %ld bytes: '%s'", n, buf);
	lkl_sys_close(fd);

	CHECK_CALL("stat", lkl_sys_newfstatat(LKL_AT_FDCWD, path, &st, 0));
	CHECK("size", st.st_size == 14, "size %lld", (long long)st.st_size);

	dir = lkl_opendir(mnt, &err);
	CHECK("opendir", dir != NULL, "%s", lkl_strerror(err));
	while (dir && (de = lkl_readdir(dir)))
		found |= !strcmp(de->d_name, "hello.txt");
	if (dir)
		lkl_closedir(dir);
	CHECK("readdir", found, "hello.txt not listed");

	snprintf(path, sizeof(path), "%s/big.txt", mnt);
	fd = CHECK_CALL("open big", lkl_sys_openat(LKL_AT_FDCWD, path, LKL_O_RDONLY, 0));
	CHECK("read big", read_lines(fd, BIG_LINES), "content differs");
	lkl_sys_close(fd);

	snprintf(path, sizeof(path), "%s/hello.txt", mnt);
	fd = lkl_sys_openat(LKL_AT_FDCWD, path, LKL_O_WRONLY, 0);
	CHECK("writes refused", fd == -EROFS, "open for writing gave %ld", fd);
	if (fd >= 0)
		lkl_sys_close(fd);
}

static void read_write_checks(const char *mnt, const char *features)
{
	char dir[128], file[160], renamed[160], link[160], hard[160], fifo[160];
	char target[64] = { 0 }, xval[16] = { 0 };
	char *buf = malloc(FILE_SIZE), *back = malloc(FILE_SIZE);
	struct lkl_stat st;
	struct lkl_dir *d;
	struct lkl_linux_dirent64 *de;
	int err, found = 0;
	long fd, n;

	snprintf(dir, sizeof(dir), "%s/dir", mnt);
	snprintf(file, sizeof(file), "%s/file", dir);
	snprintf(renamed, sizeof(renamed), "%s/renamed", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	snprintf(hard, sizeof(hard), "%s/hard", dir);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);

	CHECK_CALL("mkdir", lkl_sys_mkdirat(LKL_AT_FDCWD, dir, 0755));
	pattern(buf, FILE_SIZE);
	fd = CHECK_CALL("create", lkl_sys_openat(LKL_AT_FDCWD, file,
						 LKL_O_CREAT | LKL_O_RDWR | LKL_O_EXCL, 0644));
	n = lkl_sys_write(fd, buf, FILE_SIZE);
	CHECK("write", n == FILE_SIZE, "wrote %ld", n);
	CHECK_CALL("fsync", lkl_sys_fsync(fd));
	n = lkl_sys_pread64(fd, back, FILE_SIZE, 0);
	CHECK("read back", n == FILE_SIZE && !memcmp(buf, back, FILE_SIZE), "read %ld", n);
	lkl_sys_close(fd);

	d = lkl_opendir(dir, &err);
	CHECK("opendir", d != NULL, "%s", lkl_strerror(err));
	while (d && (de = lkl_readdir(d)))
		found |= !strcmp(de->d_name, "file");
	if (d)
		lkl_closedir(d);
	CHECK("readdir", found, "file not listed");

	CHECK_CALL("stat", lkl_sys_newfstatat(LKL_AT_FDCWD, file, &st, 0));
	CHECK("size", st.st_size == FILE_SIZE, "size %lld", (long long)st.st_size);

	CHECK_CALL("rename", lkl_sys_renameat(LKL_AT_FDCWD, file, LKL_AT_FDCWD, renamed));
	n = lkl_sys_newfstatat(LKL_AT_FDCWD, file, &st, 0);
	CHECK("old name gone", n == -ENOENT, "stat old name: %ld", n);

	/* A file that is created and removed again. */
	fd = CHECK_CALL("create temp", lkl_sys_openat(LKL_AT_FDCWD, file,
						      LKL_O_CREAT | LKL_O_WRONLY, 0600));
	lkl_sys_close(fd);
	CHECK_CALL("unlink", lkl_sys_unlinkat(LKL_AT_FDCWD, file, 0));

	if (has(features, "symlink")) {
		CHECK_CALL("symlink", lkl_sys_symlinkat("renamed", LKL_AT_FDCWD, link));
		n = lkl_sys_readlinkat(LKL_AT_FDCWD, link, target, sizeof(target) - 1);
		CHECK("readlink", n == 7 && !strcmp(target, "renamed"), "got '%s'", target);
	}
	if (has(features, "hardlink")) {
		CHECK_CALL("link", lkl_sys_linkat(LKL_AT_FDCWD, renamed, LKL_AT_FDCWD, hard, 0));
		lkl_sys_newfstatat(LKL_AT_FDCWD, renamed, &st, 0);
		CHECK("link count", st.st_nlink == 2, "nlink %u", (unsigned)st.st_nlink);
	}
	if (has(features, "xattr")) {
		CHECK_CALL("setxattr", lkl_sys_setxattr(renamed, "user.lklfs", "hello", 5, 0));
		n = lkl_sys_getxattr(renamed, "user.lklfs", xval, sizeof(xval));
		CHECK("getxattr", n == 5 && !memcmp(xval, "hello", 5), "got %ld '%s'", n, xval);
	}
	if (has(features, "secxattr")) {
		/* No LSM is built in: the filesystem stores the label as given. */
		static const char label[] = "system_u:object_r:etc_t:s0";
		char got[64] = { 0 };

		CHECK_CALL("set security xattr",
			   lkl_sys_setxattr(renamed, "security.selinux", label, sizeof(label), 0));
		n = lkl_sys_getxattr(renamed, "security.selinux", got, sizeof(got));
		CHECK("get security xattr", n == sizeof(label) && !memcmp(got, label, n),
		      "got %ld '%s'", n, got);
	}
	if (has(features, "acl")) {
		/* The xattr form of the ACL above: version 2, then tag, perm, id. */
		static const unsigned char acl[] = {
			2, 0, 0, 0,
			0x01, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,	/* user::rw- */
			0x02, 0, 4, 0, 0xe8, 0x03, 0, 0,	/* user:1000:r-- */
			0x04, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,	/* group::r-- */
			0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,	/* mask::r-- */
			0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,	/* other::r-- */
		};
		unsigned char got[64];

		CHECK_CALL("set ACL", lkl_sys_setxattr(renamed, "system.posix_acl_access",
						       acl, sizeof(acl), 0));
		n = lkl_sys_getxattr(renamed, "system.posix_acl_access", got, sizeof(got));
		CHECK("get ACL", n == sizeof(acl) && !memcmp(got, acl, sizeof(acl)),
		      "got %ld bytes", n);
	}
	if (has(features, "chown")) {
		CHECK_CALL("chown", lkl_sys_fchownat(LKL_AT_FDCWD, renamed, 1234, 5678, 0));
		lkl_sys_newfstatat(LKL_AT_FDCWD, renamed, &st, 0);
		CHECK("owner", st.st_uid == 1234 && st.st_gid == 5678, "%u:%u",
		      (unsigned)st.st_uid, (unsigned)st.st_gid);
	}
	if (has(features, "mknod"))
		CHECK_CALL("mknod fifo", lkl_sys_mknodat(LKL_AT_FDCWD, fifo, LKL_S_IFIFO | 0644, 0));
	if (has(features, "nsec")) {
		struct __lkl__kernel_timespec ts[2] = {
			{ .tv_sec = 1234567890, .tv_nsec = 123456789 },
			{ .tv_sec = 1234567890, .tv_nsec = 123456789 },
		};

		CHECK_CALL("utimensat", lkl_sys_utimensat(LKL_AT_FDCWD, renamed, ts, 0));
		lkl_sys_newfstatat(LKL_AT_FDCWD, renamed, &st, 0);
		CHECK("mtime with nanoseconds",
		      st.lkl_st_mtime == 1234567890 && st.st_mtime_nsec == 123456789,
		      "%lld.%09lld", (long long)st.lkl_st_mtime, (long long)st.st_mtime_nsec);
	}
	free(buf);
	free(back);
}

int main(int argc, char **argv)
{
	struct lkl_disk disk;
	char mnt[64];
	int ro, id;
	long ret;

	if (argc != 5) {
		fprintf(stderr, "usage: fsops IMAGE FSTYPE PART FEATURES\n");
		return 2;
	}
	ro = has(argv[4], "ro");
	id = attach_and_boot(argv[1], ro, "mem=128M quiet", &disk);
	if (id < 0)
		return 1;

	ret = lkl_mount_dev(id, atoi(argv[3]), argv[2], ro ? LKL_MS_RDONLY : 0,
			    NULL, mnt, sizeof(mnt));
	CHECK("mount", ret == 0, "%s", lkl_strerror(ret));
	if (ret) {
		lkl_sys_halt();
		return 1;
	}

	if (ro)
		read_only_checks(mnt);
	else
		read_write_checks(mnt, argv[4]);
	if (has(argv[4], "dirty")) {
		lkl_sys_sync();
		_exit(check_failures);
	}

	ret = lkl_umount_dev(id, atoi(argv[3]), 0, 1000);
	CHECK("umount", ret == 0, "%s", lkl_strerror(ret));
	ret = lkl_sys_halt();
	CHECK("halt", ret == 0, "%s", lkl_strerror(ret));
	close(disk.fd);
	return check_failures;
}
