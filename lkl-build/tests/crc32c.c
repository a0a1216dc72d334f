// SPDX-License-Identifier: GPL-2.0
/*
 * crc32c IMAGE FSTYPE: which crc32c the filesystems use, and whether it is
 * right. Boots with lkl_crc32c_check (the SSE4.2 driver compares itself
 * with crc32c-generic over many lengths, alignments and seeds, and logs the
 * outcome), then mounts IMAGE and writes a tree into it: directories, files
 * of many sizes, extended attributes, renames and removals, so that
 * metadata and journal checksums are computed; the host's checker judges
 * the image afterwards.
 *
 * Prints the check's log line as "check: LINE", and for each crc32c driver
 * of /proc/crypto "crc32c DRIVER priority P refs BOOTED MOUNTED": the
 * transforms held on it after boot and with IMAGE mounted (one is the
 * registration itself).
 */
#include <unistd.h>

#include "check.h"
#include <lkl/linux/fcntl.h>
#include <lkl/linux/stat.h>

#define DRIVER "crc32c-sse42"
#define MAX_DRIVERS 4

struct crc32c_driver {
	char name[64];
	int priority;
	int refs[2];
};

static struct crc32c_driver drivers[MAX_DRIVERS];
static int ndrivers;

static struct crc32c_driver *driver(const char *name)
{
	int i;

	for (i = 0; i < ndrivers; i++)
		if (!strcmp(drivers[i].name, name))
			return &drivers[i];
	if (ndrivers == MAX_DRIVERS)
		return NULL;
	snprintf(drivers[ndrivers].name, sizeof(drivers[ndrivers].name), "%s", name);
	drivers[ndrivers].refs[0] = drivers[ndrivers].refs[1] = -1;
	return &drivers[ndrivers++];
}

static long read_file(const char *path, char *buf, size_t size)
{
	long fd = lkl_sys_open(path, LKL_O_RDONLY, 0), n, got = 0;

	if (fd < 0)
		return fd;
	while ((size_t)got < size - 1 &&
	       (n = lkl_sys_read(fd, buf + got, size - 1 - got)) > 0)
		got += n;
	lkl_sys_close(fd);
	buf[got] = 0;
	return got;
}

/* The value of "KEY : value" in the block that starts at block. */
static const char *field(const char *block, const char *end, const char *key,
			 char *value, size_t size)
{
	const char *p = block, *colon, *eol;
	size_t n = strlen(key);

	for (; p < end; p = eol + 1) {
		eol = strchr(p, '\n');
		if (!eol || eol > end)
			eol = end;
		colon = memchr(p, ':', eol - p);
		if (!colon || colon - p < (long)n || strncmp(p, key, n) ||
		    (p[n] != ' ' && p[n] != ':'))
			continue;
		for (colon++; *colon == ' '; colon++)
			;
		snprintf(value, size, "%.*s", (int)(eol - colon), colon);
		return value;
	}
	return NULL;
}

/* Records each crc32c driver's references as /proc/crypto tells them now. */
static void read_crypto(int when)
{
	static char buf[1 << 16];
	char name[64], drv[64], prio[16], refs[16];
	const char *block, *end;
	long n = read_file("/proc/crypto", buf, sizeof(buf));

	CHECK(when ? "/proc/crypto when mounted" : "/proc/crypto after boot", n > 0,
	      "%s", lkl_strerror(n));
	for (block = buf; n > 0 && *block; block = end + (*end != 0)) {
		struct crc32c_driver *d;

		end = strstr(block, "\n\n");
		if (!end)
			end = block + strlen(block);
		if (!field(block, end, "name", name, sizeof(name)) || strcmp(name, "crc32c") ||
		    !field(block, end, "driver", drv, sizeof(drv)) ||
		    !field(block, end, "priority", prio, sizeof(prio)) ||
		    !field(block, end, "refcnt", refs, sizeof(refs)))
			continue;
		d = driver(drv);
		if (!d)
			continue;
		d->priority = atoi(prio);
		d->refs[when] = atoi(refs);
	}
}

/* The check's verdict from the kernel log. */
static void check_verdict(void)
{
	static char log[1 << 17];
	const char *line, *eol;
	long n = lkl_sys_syslog(3 /* SYSLOG_ACTION_READ_ALL */, log, sizeof(log) - 1);

	CHECK("kernel log", n > 0, "%s", lkl_strerror(n));
	log[n > 0 ? n : 0] = 0;
	line = strstr(log, DRIVER ": ");
	if (line) {
		eol = strchr(line, '\n');
		printf("check: %.*s\n", eol ? (int)(eol - line) : (int)strlen(line), line);
	}
	CHECK("the driver agrees with crc32c-generic",
	      line && !strncmp(line, DRIVER ": agrees with crc32c-generic in ",
			       strlen(DRIVER ": agrees with crc32c-generic in ")),
	      "%s", line ? "see the check line" : "no line from " DRIVER " in the kernel log");
}

/*
 * Eight directories of files sized around block and round boundaries, some
 * with an xattr; every fifth file moved to the next directory, every
 * seventh removed. Returns how many calls failed.
 */
static int write_tree(const char *mnt)
{
	static char data[70000];
	static const int sizes[] = { 0, 1, 7, 100, 511, 4095, 4096, 4097, 12289, 65536 + 13 };
	char path[256], to[256];
	unsigned int i, d, failed = 0;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 31 + i / 511);
	for (d = 0; d < 8; d++) {
		snprintf(path, sizeof(path), "%s/d%u", mnt, d);
		failed += lkl_sys_mkdir(path, 0755) != 0;
	}
	for (d = 0; d < 8; d++) {
		for (i = 0; i < 60; i++) {
			int size = sizes[(i + d) % (sizeof(sizes) / sizeof(sizes[0]))];
			long fd;

			snprintf(path, sizeof(path), "%s/d%u/file-with-a-longer-name-%u", mnt, d, i);
			fd = lkl_sys_open(path, LKL_O_CREAT | LKL_O_WRONLY, 0644);
			if (fd < 0) {
				failed++;
				continue;
			}
			failed += lkl_sys_write(fd, data + i, size) != size;
			if (i % 3 == 0)
				failed += lkl_sys_fsetxattr(fd, "user.crc", data, 10 + i, 0) != 0;
			lkl_sys_close(fd);
			if (i % 5 == 0) {
				snprintf(to, sizeof(to), "%s/d%u/moved-%u-%u", mnt, (d + 1) % 8, d, i);
				failed += lkl_sys_rename(path, to) != 0;
			} else if (i % 7 == 0) {
				failed += lkl_sys_unlink(path) != 0;
			}
		}
	}
	failed += lkl_sys_sync() != 0;
	return failed;
}

int main(int argc, char **argv)
{
	struct lkl_disk disk;
	char mnt[64];
	long ret;
	int id, i, failed;

	if (argc != 3) {
		fprintf(stderr, "usage: crc32c IMAGE FSTYPE\n");
		return 2;
	}
	id = attach_and_boot(argv[1], 0, "mem=64M loglevel=5 lkl_crc32c_check", &disk);
	if (id < 0)
		return 1;
	check_verdict();
	CHECK_CALL("mount proc", lkl_mount_fs("proc"));
	read_crypto(0);
	ret = lkl_mount_dev(id, 0, argv[2], 0, NULL, mnt, sizeof(mnt));
	CHECK("mount", ret == 0, "%s", lkl_strerror(ret));
	if (!ret) {
		failed = write_tree(mnt);
		CHECK("writes", failed == 0, "%d calls failed", failed);
		read_crypto(1);
		ret = lkl_umount_dev(id, 0, 0, 1000);
		CHECK("umount", ret == 0, "%s", lkl_strerror(ret));
	}
	for (i = 0; i < ndrivers; i++)
		printf("crc32c %s priority %d refs %d %d\n", drivers[i].name,
		       drivers[i].priority, drivers[i].refs[0], drivers[i].refs[1]);
	ret = lkl_sys_halt();
	CHECK("halt", ret == 0, "%s", lkl_strerror(ret));
	close(disk.fd);
	return check_failures;
}
