/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _ASM_UAPI_LKL_HOST_OPS_H
#define _ASM_UAPI_LKL_HOST_OPS_H

/*
 * The operations the kernel needs from the process it lives in. The host
 * library (liblkl.a) provides a POSIX implementation as lkl_host_ops; see
 * lkl_host.h for who calls each operation and whether it may block.
 *
 * Only plain C types cross this boundary so that the header reads the same
 * inside the kernel and in host code.
 */

#include <linux/uio.h>

struct lkl_mutex;
struct lkl_sem;
struct lkl_tls_key;
typedef unsigned long lkl_thread_t;

#define LKL_HOST_OPS_VERSION 3

struct lkl_host_operations {
	/* Interface version the host implements (LKL_HOST_OPS_VERSION). */
	int version;

	/* Kernel log output; NULL silences the kernel. */
	void (*print)(const char *str, int len);
	/* A kernel panic: print nothing more, do not return. */
	void (*panic)(void);

	struct lkl_sem *(*sem_alloc)(int count);
	void (*sem_free)(struct lkl_sem *sem);
	void (*sem_up)(struct lkl_sem *sem);
	void (*sem_down)(struct lkl_sem *sem);

	struct lkl_mutex *(*mutex_alloc)(int recursive);
	void (*mutex_free)(struct lkl_mutex *mutex);
	void (*mutex_lock)(struct lkl_mutex *mutex);
	void (*mutex_unlock)(struct lkl_mutex *mutex);

	/* Threads run with the host's default stack size. */
	lkl_thread_t (*thread_create)(void (*f)(void *), void *arg);
	void (*thread_detach)(void);
	void (*thread_exit)(void);
	int (*thread_join)(lkl_thread_t tid);
	lkl_thread_t (*thread_self)(void);
	int (*thread_equal)(lkl_thread_t a, lkl_thread_t b);

	struct lkl_tls_key *(*tls_alloc)(void (*destructor)(void *));
	void (*tls_free)(struct lkl_tls_key *key);
	int (*tls_set)(struct lkl_tls_key *key, void *data);
	void *(*tls_get)(struct lkl_tls_key *key);

	void *(*mem_alloc)(unsigned long size);
	void (*mem_free)(void *mem);
	/* Page-aligned, zero-filled memory for the kernel's RAM. */
	void *(*page_alloc)(unsigned long size);
	void (*page_free)(void *mem, unsigned long size);
	/*
	 * Optional: back [addr, addr + size) of page_alloc memory with host
	 * memory now, without changing its contents, so that the kernel's
	 * first touch of each page costs no host page fault. Called from a
	 * thread of its own while the kernel runs (boot option lkl_prefault);
	 * returns 0 or a negative errno, which stops the prefaulting.
	 */
	int (*page_populate)(void *addr, unsigned long size);

	/* Monotonic time in nanoseconds. */
	unsigned long long (*time)(void);
	/* Wall-clock time in nanoseconds since the Unix epoch. */
	unsigned long long (*wall_time)(void);

	/* One-shot timers whose callback runs on a host thread. */
	void *(*timer_alloc)(void (*fn)(void *), void *arg);
	int (*timer_set_oneshot)(void *timer, unsigned long long delta_ns);
	void (*timer_free)(void *timer);

	/*
	 * Optional: make count RAM pages (page-aligned addresses inside the
	 * memory page_alloc returned) appear one after another at a new
	 * address, so that a write through either address is seen through
	 * both; NULL when that cannot be done. This is the kernel's vmap(),
	 * which erofs, f2fs compression and multi-page xfs buffers need.
	 */
	void *(*vmap)(void *const *pages, unsigned int count);
	void (*vunmap)(void *addr, unsigned int count);

	/*
	 * Optional: fill buf with len random bytes from the host (getrandom);
	 * 0 or a negative errno. Read once at boot to seed the kernel's random
	 * number generator, as a boot loader's seed would.
	 */
	int (*random)(void *buf, unsigned long len);
};

/*
 * Disks. A disk is whatever the host's block operations reach through
 * dev/fd/handle; liblkl.a provides lkl_dev_blk_ops for file descriptors.
 * The kernel calls request() on I/O threads of its own (never with the
 * CPU held), several requests at a time.
 */
struct lkl_dev_blk_ops;

struct lkl_disk {
	void *dev;
	union {
		int fd;
		void *handle;
	};
	struct lkl_dev_blk_ops *ops;
};

#define LKL_DEV_BLK_TYPE_READ		0
#define LKL_DEV_BLK_TYPE_WRITE		1
#define LKL_DEV_BLK_TYPE_FLUSH		4
#define LKL_DEV_BLK_TYPE_FLUSH_OUT	5
#define LKL_DEV_BLK_TYPE_DISCARD	11
#define LKL_DEV_BLK_TYPE_WRITE_ZEROES	13

#define LKL_DEV_BLK_STATUS_OK		0
#define LKL_DEV_BLK_STATUS_IOERR	1
#define LKL_DEV_BLK_STATUS_UNSUP	2

/*
 * One request: bytes at sector * 512. For READ and WRITE, buf holds count
 * buffers filled or written in order; for DISCARD and WRITE_ZEROES, count
 * is 1 and buf[0].iov_len is the length (iov_base is NULL); FLUSH has no
 * buffers and must make every completed write durable.
 */
struct lkl_blk_req {
	unsigned int type;
	unsigned int prio;
	unsigned long long sector;
	struct iovec *buf;
	int count;
};

struct lkl_dev_blk_ops {
	/* Size in bytes; 0 or a negative errno. */
	int (*get_capacity)(struct lkl_disk disk, unsigned long long *res);
	/* Blocking I/O; returns an LKL_DEV_BLK_STATUS_ value. */
	int (*request)(struct lkl_disk disk, struct lkl_blk_req *req);
	/* Optional: non-zero if writes must be refused (image opened read-only). */
	int (*read_only)(struct lkl_disk disk);
	/* Optional: non-zero if DISCARD and WRITE_ZEROES are supported. */
	int (*can_discard)(struct lkl_disk disk);
};

#endif
