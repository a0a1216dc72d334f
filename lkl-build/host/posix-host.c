// SPDX-License-Identifier: GPL-2.0
/*
 * lkl_host_ops for POSIX hosts: pthreads, POSIX semaphores, a memfd for
 * the kernel's RAM and one thread per one-shot timer.
 *
 * Everything here may be called from kernel context, so nothing blocks
 * except where lkl_host.h says an operation may, and nothing calls back
 * into the kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <lkl_host.h>

struct lkl_sem {
	sem_t sem;
};

struct lkl_mutex {
	pthread_mutex_t mutex;
};

struct lkl_tls_key {
	pthread_key_t key;
};

static void host_print(const char *str, int len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, str, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		str += n;
		len -= n;
	}
}

static void host_panic(void)
{
	static const char msg[] = "lkl: kernel panic, see the kernel log above\n";

	host_print(msg, sizeof(msg) - 1);
	_exit(LKL_PANIC_EXIT_CODE);
}

static struct lkl_sem *sem_alloc(int count)
{
	struct lkl_sem *sem = malloc(sizeof(*sem));

	if (sem && sem_init(&sem->sem, 0, count) < 0) {
		free(sem);
		return NULL;
	}
	return sem;
}

static void sem_free(struct lkl_sem *sem)
{
	sem_destroy(&sem->sem);
	free(sem);
}

static void sem_up(struct lkl_sem *sem)
{
	sem_post(&sem->sem);
}

static void sem_down(struct lkl_sem *sem)
{
	while (sem_wait(&sem->sem) < 0 && errno == EINTR)
		;
}

static struct lkl_mutex *mutex_alloc(int recursive)
{
	struct lkl_mutex *mutex = malloc(sizeof(*mutex));
	pthread_mutexattr_t attr;

	if (!mutex)
		return NULL;
	pthread_mutexattr_init(&attr);
	if (recursive)
		pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&mutex->mutex, &attr);
	pthread_mutexattr_destroy(&attr);
	return mutex;
}

static void mutex_free(struct lkl_mutex *mutex)
{
	pthread_mutex_destroy(&mutex->mutex);
	free(mutex);
}

static void mutex_lock(struct lkl_mutex *mutex)
{
	pthread_mutex_lock(&mutex->mutex);
}

static void mutex_unlock(struct lkl_mutex *mutex)
{
	pthread_mutex_unlock(&mutex->mutex);
}

struct thread_start {
	void (*fn)(void *);
	void *arg;
};

static void *thread_trampoline(void *data)
{
	struct thread_start start = *(struct thread_start *)data;

	free(data);
	start.fn(start.arg);
	return NULL;
}

static lkl_thread_t thread_create(void (*fn)(void *), void *arg)
{
	struct thread_start *start = malloc(sizeof(*start));
	pthread_t thread;

	if (!start)
		return 0;
	start->fn = fn;
	start->arg = arg;
	if (pthread_create(&thread, NULL, thread_trampoline, start)) {
		free(start);
		return 0;
	}
	return (lkl_thread_t)thread;
}

static void thread_detach(void)
{
	pthread_detach(pthread_self());
}

static void thread_exit(void)
{
	pthread_exit(NULL);
}

static int thread_join(lkl_thread_t tid)
{
	return pthread_join((pthread_t)tid, NULL) ? -1 : 0;
}

static lkl_thread_t thread_self(void)
{
	return (lkl_thread_t)pthread_self();
}

static int thread_equal(lkl_thread_t a, lkl_thread_t b)
{
	return pthread_equal((pthread_t)a, (pthread_t)b);
}

static struct lkl_tls_key *tls_alloc(void (*destructor)(void *))
{
	struct lkl_tls_key *key = malloc(sizeof(*key));

	if (key && pthread_key_create(&key->key, destructor)) {
		free(key);
		return NULL;
	}
	return key;
}

static void tls_free(struct lkl_tls_key *key)
{
	pthread_key_delete(key->key);
	free(key);
}

static int tls_set(struct lkl_tls_key *key, void *data)
{
	return pthread_setspecific(key->key, data) ? -1 : 0;
}

static void *tls_get(struct lkl_tls_key *key)
{
	return pthread_getspecific(key->key);
}

static void *mem_alloc(unsigned long size)
{
	return malloc(size);
}

static void mem_free(void *mem)
{
	free(mem);
}

/*
 * The kernel's RAM is a memfd mapping, so that vmap() can alias its pages
 * elsewhere; pages cost memory only once the kernel touches them. If
 * memfd_create is unavailable the RAM is anonymous and vmap() fails.
 */
static struct {
	char *base;
	unsigned long size;
	int fd;
} ram = { .fd = -1 };

static void *page_alloc(unsigned long size)
{
	int fd = memfd_create("lkl-ram", MFD_CLOEXEC);
	void *mem;

	if (fd >= 0 && ftruncate(fd, size) < 0) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0)
		mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	else
		mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!ram.base && fd >= 0) {
		ram.base = mem;
		ram.size = size;
		ram.fd = fd;
	} else if (fd >= 0) {
		close(fd);
	}
	return mem;
}

static void page_free(void *mem, unsigned long size)
{
	munmap(mem, size);
	if (mem == ram.base) {
		close(ram.fd);
		ram.base = NULL;
		ram.fd = -1;
	}
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23	/* Linux 5.14 */
#endif

static int page_populate(void *addr, unsigned long size)
{
	return madvise(addr, size, MADV_POPULATE_WRITE) ? -errno : 0;
}

/* Maps runs of consecutive RAM pages with one mmap each. */
static void *host_vmap(void *const *pages, unsigned int count)
{
	unsigned long psize = sysconf(_SC_PAGESIZE);
	unsigned int i = 0, run;
	char *addr;

	if (ram.fd < 0 || !count)
		return NULL;
	addr = mmap(NULL, count * psize, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (addr == MAP_FAILED)
		return NULL;
	while (i < count) {
		char *p = pages[i];

		if (p < ram.base || p + psize > ram.base + ram.size ||
		    (unsigned long)(p - ram.base) % psize)
			goto fail;
		for (run = 1; i + run < count && pages[i + run] == p + run * psize; run++)
			;
		if (mmap(addr + i * psize, run * psize, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, ram.fd, p - ram.base) == MAP_FAILED)
			goto fail;
		i += run;
	}
	return addr;
fail:
	munmap(addr, count * psize);
	return NULL;
}

static void host_vunmap(void *addr, unsigned int count)
{
	munmap(addr, count * sysconf(_SC_PAGESIZE));
}

static int host_random(void *buf, unsigned long len)
{
	char *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

static unsigned long long clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static unsigned long long monotonic_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static unsigned long long wall_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

/*
 * A one-shot timer is a thread sleeping on a condition variable until its
 * deadline (on the monotonic clock); setting the timer moves the deadline.
 */
struct host_timer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned long long deadline;	/* 0: not armed */
	bool stop;
	void (*fn)(void *);
	void *arg;
};

static void *timer_thread(void *data)
{
	struct host_timer *t = data;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		unsigned long long now = monotonic_ns();
		struct timespec ts;

		if (!t->deadline) {
			pthread_cond_wait(&t->cond, &t->lock);
			continue;
		}
		if (now >= t->deadline) {
			t->deadline = 0;
			pthread_mutex_unlock(&t->lock);
			t->fn(t->arg);
			pthread_mutex_lock(&t->lock);
			continue;
		}
		ts.tv_sec = t->deadline / 1000000000ULL;
		ts.tv_nsec = t->deadline % 1000000000ULL;
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static void *timer_alloc(void (*fn)(void *), void *arg)
{
	struct host_timer *t = calloc(1, sizeof(*t));
	pthread_condattr_t attr;

	if (!t)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&t->thread, NULL, timer_thread, t)) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return NULL;
	}
	return t;
}

static int timer_set_oneshot(void *timer, unsigned long long delta_ns)
{
	struct host_timer *t = timer;

	unsigned long long deadline = monotonic_ns() + (delta_ns ? delta_ns : 1);

	pthread_mutex_lock(&t->lock);
	/* A later deadline needs no wake-up: the thread re-checks when it wakes. */
	if (!t->deadline || deadline < t->deadline)
		pthread_cond_signal(&t->cond);
	t->deadline = deadline;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static void timer_free(void *timer)
{
	struct host_timer *t = timer;

	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

struct lkl_host_operations lkl_host_ops = {
	.version = LKL_HOST_OPS_VERSION,
	.print = host_print,
	.panic = host_panic,
	.sem_alloc = sem_alloc,
	.sem_free = sem_free,
	.sem_up = sem_up,
	.sem_down = sem_down,
	.mutex_alloc = mutex_alloc,
	.mutex_free = mutex_free,
	.mutex_lock = mutex_lock,
	.mutex_unlock = mutex_unlock,
	.thread_create = thread_create,
	.thread_detach = thread_detach,
	.thread_exit = thread_exit,
	.thread_join = thread_join,
	.thread_self = thread_self,
	.thread_equal = thread_equal,
	.tls_alloc = tls_alloc,
	.tls_free = tls_free,
	.tls_set = tls_set,
	.tls_get = tls_get,
	.mem_alloc = mem_alloc,
	.mem_free = mem_free,
	.page_alloc = page_alloc,
	.page_free = page_free,
	.page_populate = page_populate,
	.time = monotonic_ns,
	.wall_time = wall_ns,
	.timer_alloc = timer_alloc,
	.timer_set_oneshot = timer_set_oneshot,
	.timer_free = timer_free,
	.vmap = host_vmap,
	.vunmap = host_vunmap,
	.random = host_random,
};
