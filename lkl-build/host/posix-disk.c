// SPDX-License-Identifier: GPL-2.0
/*
 * lkl_dev_blk_ops for file descriptors: image files and block devices.
 * Called on the kernel's disk I/O threads, never with the CPU held, so
 * blocking here is fine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <lkl_host.h>

static int fd_get_capacity(struct lkl_disk disk, unsigned long long *res)
{
	struct stat st;

	if (fstat(disk.fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode))
		return ioctl(disk.fd, BLKGETSIZE64, res) < 0 ? -errno : 0;
	if (!S_ISREG(st.st_mode))
		return -ENOTBLK;
	*res = st.st_size;
	return 0;
}

/*
 * preadv/pwritev until every buffer is done. A read past the end of the
 * image (a file shorter than a sector multiple) reads as zeros.
 */
static int fd_rw(int fd, struct iovec *iov, int count, off_t off, int write)
{
	while (count > 0) {
		ssize_t n = write ? pwritev(fd, iov, count, off) :
				    preadv(fd, iov, count, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return LKL_DEV_BLK_STATUS_IOERR;
		}
		if (n == 0) {
			if (write)
				return LKL_DEV_BLK_STATUS_IOERR;
			for (; count > 0; iov++, count--)
				memset(iov->iov_base, 0, iov->iov_len);
			break;
		}
		off += n;
		while (count > 0 && (size_t)n >= iov->iov_len) {
			n -= iov->iov_len;
			iov++;
			count--;
		}
		if (count > 0 && n > 0) {
			/* Partial buffer: iov is ours to adjust (the kernel's copy). */
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= n;
		}
	}
	return LKL_DEV_BLK_STATUS_OK;
}

/*
 * A large write (the kernel's writeback of a streaming write) starts the
 * host's writeback of that range at once. Left to the host's own flusher,
 * such data piles up dirty in the host's page cache and the final flush
 * (fdatasync) writes it all at the end, while nothing else runs; started
 * now, the disk works while the kernel carries on. Small writes (journal,
 * metadata) are left to the host to coalesce. Only a hint: errors (say a
 * file system without it) are ignored, and FLUSH still makes data durable.
 */
#define WRITEBACK_MIN	(256 * 1024)

static void start_writeback(int fd, off_t off, size_t len)
{
	if (len >= WRITEBACK_MIN)
		sync_file_range(fd, off, len, SYNC_FILE_RANGE_WRITE);
}

static size_t iov_bytes(const struct iovec *iov, int count)
{
	size_t len = 0;

	while (count-- > 0)
		len += iov++->iov_len;
	return len;
}

static int fd_fallocate(int fd, int mode, off_t off, off_t len)
{
	while (fallocate(fd, mode, off, len) < 0) {
		if (errno == EINTR)
			continue;
		return errno == EOPNOTSUPP ? LKL_DEV_BLK_STATUS_UNSUP :
					     LKL_DEV_BLK_STATUS_IOERR;
	}
	return LKL_DEV_BLK_STATUS_OK;
}

static int fd_request(struct lkl_disk disk, struct lkl_blk_req *req)
{
	off_t off = (off_t)req->sector * 512;
	struct iovec *iov = (struct iovec *)req->buf;
	size_t len;
	int ret;

	switch (req->type) {
	case LKL_DEV_BLK_TYPE_READ:
		return fd_rw(disk.fd, iov, req->count, off, 0);
	case LKL_DEV_BLK_TYPE_WRITE:
		/* Sized first: fd_rw() may adjust the vector as it goes. */
		len = iov_bytes(iov, req->count);
		ret = fd_rw(disk.fd, iov, req->count, off, 1);
		if (ret == LKL_DEV_BLK_STATUS_OK)
			start_writeback(disk.fd, off, len);
		return ret;
	case LKL_DEV_BLK_TYPE_FLUSH:
	case LKL_DEV_BLK_TYPE_FLUSH_OUT:
		while ((ret = fdatasync(disk.fd)) < 0 && errno == EINTR)
			;
		return ret < 0 ? LKL_DEV_BLK_STATUS_IOERR : LKL_DEV_BLK_STATUS_OK;
	case LKL_DEV_BLK_TYPE_DISCARD:
		return fd_fallocate(disk.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				    off, iov[0].iov_len);
	case LKL_DEV_BLK_TYPE_WRITE_ZEROES:
		ret = fd_fallocate(disk.fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				   off, iov[0].iov_len);
		if (ret != LKL_DEV_BLK_STATUS_UNSUP)
			return ret;
		return fd_fallocate(disk.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				    off, iov[0].iov_len);
	default:
		return LKL_DEV_BLK_STATUS_UNSUP;
	}
}

static int fd_read_only(struct lkl_disk disk)
{
	int flags = fcntl(disk.fd, F_GETFL);

	return flags < 0 || (flags & O_ACCMODE) == O_RDONLY;
}

/* Hole punching only makes sense (and only works) on regular files. */
static int fd_can_discard(struct lkl_disk disk)
{
	struct stat st;

	return fstat(disk.fd, &st) == 0 && S_ISREG(st.st_mode);
}

struct lkl_dev_blk_ops lkl_dev_blk_ops = {
	.get_capacity = fd_get_capacity,
	.request = fd_request,
	.read_only = fd_read_only,
	.can_discard = fd_can_discard,
};
