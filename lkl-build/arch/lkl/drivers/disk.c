// SPDX-License-Identifier: GPL-2.0
/*
 * Host disks as blk-mq block devices.
 *
 * queue_rq() queues most requests for the disk's host I/O threads, which
 * call the host's blocking request() without the CPU and raise the disk's
 * interrupt when done; the interrupt handler ends the requests. The kernel
 * keeps working meanwhile, with several requests in flight. Small reads
 * are the exception (see INLINE_READ). Flush reaches the host (fdatasync
 * for files), discard becomes hole punching, and a read-only disk is
 * read-only in the block layer.
 */
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/interrupt.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <asm/cpu.h>
#include <asm/library.h>

#define MAX_DISKS	64
#define MINORS		16
#define IO_THREADS	4
#define QUEUE_DEPTH	64
#define MAX_SEGMENTS	256
#define MAX_SECTORS	2048	/* 1 MiB per request */
/*
 * Reads up to this size are done at once in queue_rq, on the kernel's
 * CPU. Someone waits for a small read (a directory block, an inode table
 * block, a small file), usually out of the host's page cache in a few
 * microseconds; handing it to an I/O thread and taking the interrupt back
 * costs several host thread switches, far more.
 */
#define INLINE_READ	(64 * 1024)

struct disk_io {
	struct list_head node;
	struct lkl_blk_req req;
	int status;
	struct iovec iov[MAX_SEGMENTS];
};

struct host_disk {
	int id;
	bool used, registered;
	struct lkl_disk disk;
	int irq;
	struct blk_mq_tag_set tags;
	struct gendisk *gd;
	/* Shared with the host I/O threads, under lock. */
	struct lkl_mutex *lock;
	/*
	 * Host filesystems serialise writes to one file on its inode lock,
	 * spinning while they wait; a sleeping lock of our own leaves that
	 * CPU to the kernel instead. Reads still run in parallel.
	 */
	struct lkl_mutex *write_lock;
	struct lkl_sem *work;
	struct list_head submitted, completed;
	bool stop;
	lkl_thread_t threads[IO_THREADS];
};

/* The host library's backend for file descriptors (host/posix-disk.c). */
extern struct lkl_dev_blk_ops lkl_dev_blk_ops;

static struct host_disk disks[MAX_DISKS];
static int disk_major;
static DEFINE_MUTEX(disks_mutex);

static void io_thread(void *arg)
{
	struct host_disk *d = arg;
	struct disk_io *io;

	for (;;) {
		lkl_ops->sem_down(d->work);
		lkl_ops->mutex_lock(d->lock);
		if (list_empty(&d->submitted)) {
			bool stop = d->stop;

			lkl_ops->mutex_unlock(d->lock);
			if (stop)
				return;
			continue;
		}
		io = list_first_entry(&d->submitted, struct disk_io, node);
		list_del(&io->node);
		lkl_ops->mutex_unlock(d->lock);

		if (io->req.type == LKL_DEV_BLK_TYPE_WRITE) {
			lkl_ops->mutex_lock(d->write_lock);
			io->status = d->disk.ops->request(d->disk, &io->req);
			lkl_ops->mutex_unlock(d->write_lock);
		} else {
			io->status = d->disk.ops->request(d->disk, &io->req);
		}

		lkl_ops->mutex_lock(d->lock);
		list_add_tail(&io->node, &d->completed);
		lkl_ops->mutex_unlock(d->lock);
		lkl_trigger_irq(d->irq);
	}
}

static blk_status_t blk_status(int host_status)
{
	if (host_status == LKL_DEV_BLK_STATUS_OK)
		return BLK_STS_OK;
	return host_status == LKL_DEV_BLK_STATUS_UNSUP ? BLK_STS_NOTSUPP : BLK_STS_IOERR;
}

static irqreturn_t disk_interrupt(int irq, void *dev_id)
{
	struct host_disk *d = dev_id;
	struct disk_io *io, *tmp;
	LIST_HEAD(done);

	lkl_ops->mutex_lock(d->lock);
	list_splice_init(&d->completed, &done);
	lkl_ops->mutex_unlock(d->lock);

	list_for_each_entry_safe(io, tmp, &done, node)
		blk_mq_end_request(blk_mq_rq_from_pdu(io), blk_status(io->status));
	return IRQ_HANDLED;
}

static int map_request(struct host_disk *d, struct request *rq,
		       struct disk_io *io)
{
	struct req_iterator iter;
	struct bio_vec bv;
	int n = 0;

	io->req.sector = blk_rq_pos(rq);
	io->req.buf = io->iov;
	io->req.prio = 0;

	switch (req_op(rq)) {
	case REQ_OP_READ:
		io->req.type = LKL_DEV_BLK_TYPE_READ;
		break;
	case REQ_OP_WRITE:
		io->req.type = LKL_DEV_BLK_TYPE_WRITE;
		break;
	case REQ_OP_FLUSH:
		io->req.type = LKL_DEV_BLK_TYPE_FLUSH;
		io->req.count = 0;
		return 0;
	case REQ_OP_DISCARD:
	case REQ_OP_WRITE_ZEROES:
		io->req.type = req_op(rq) == REQ_OP_DISCARD ?
			LKL_DEV_BLK_TYPE_DISCARD : LKL_DEV_BLK_TYPE_WRITE_ZEROES;
		io->iov[0].iov_base = NULL;
		io->iov[0].iov_len = blk_rq_bytes(rq);
		io->req.count = 1;
		return 0;
	default:
		return -EOPNOTSUPP;
	}

	rq_for_each_bvec(bv, rq, iter) {
		if (WARN_ON_ONCE(n == MAX_SEGMENTS))
			return -EIO;
		io->iov[n].iov_base = bvec_virt(&bv);
		io->iov[n].iov_len = bv.bv_len;
		n++;
	}
	io->req.count = n;
	return 0;
}

static blk_status_t disk_queue_rq(struct blk_mq_hw_ctx *hctx,
				  const struct blk_mq_queue_data *bd)
{
	struct host_disk *d = hctx->queue->queuedata;
	struct request *rq = bd->rq;
	struct disk_io *io = blk_mq_rq_to_pdu(rq);
	int err;

	blk_mq_start_request(rq);
	err = map_request(d, rq, io);
	if (err)
		return err == -EOPNOTSUPP ? BLK_STS_NOTSUPP : BLK_STS_IOERR;

	if (io->req.type == LKL_DEV_BLK_TYPE_READ && blk_rq_bytes(rq) <= INLINE_READ) {
		blk_mq_end_request(rq, blk_status(d->disk.ops->request(d->disk, &io->req)));
		return BLK_STS_OK;
	}

	lkl_ops->mutex_lock(d->lock);
	list_add_tail(&io->node, &d->submitted);
	lkl_ops->mutex_unlock(d->lock);
	lkl_ops->sem_up(d->work);
	return BLK_STS_OK;
}

static const struct blk_mq_ops disk_mq_ops = {
	.queue_rq = disk_queue_rq,
};

static const struct block_device_operations disk_fops = {
	.owner = THIS_MODULE,
};

static void stop_io_threads(struct host_disk *d)
{
	int i;

	lkl_ops->mutex_lock(d->lock);
	d->stop = true;
	lkl_ops->mutex_unlock(d->lock);
	for (i = 0; i < IO_THREADS; i++)
		lkl_ops->sem_up(d->work);
	for (i = 0; i < IO_THREADS; i++)
		if (d->threads[i])
			lkl_ops->thread_join(d->threads[i]);
	memset(d->threads, 0, sizeof(d->threads));
}

static void free_host_state(struct host_disk *d)
{
	if (d->work)
		lkl_ops->sem_free(d->work);
	if (d->lock)
		lkl_ops->mutex_free(d->lock);
	if (d->write_lock)
		lkl_ops->mutex_free(d->write_lock);
	d->work = NULL;
	d->lock = NULL;
	d->write_lock = NULL;
}

static int disk_register(struct host_disk *d)
{
	struct queue_limits lim = {
		.logical_block_size	= 512,
		.physical_block_size	= 512,
		.max_hw_sectors		= MAX_SECTORS,
		.max_segments		= MAX_SEGMENTS,
		/*
		 * Read-ahead is twice this: 2 MiB windows, two requests the
		 * I/O threads read in parallel, where the default (128 KiB,
		 * stretched to one request for large reads) kept one in
		 * flight; cold sequential reads measured ~15% faster.
		 */
		.io_opt			= MAX_SECTORS << SECTOR_SHIFT,
		.features		= BLK_FEAT_WRITE_CACHE,
	};
	unsigned long long bytes;
	int err, i;

	if (!disk_major) {
		disk_major = register_blkdev(0, "lkl");
		if (disk_major < 0)
			return disk_major;
	}

	err = d->disk.ops->get_capacity(d->disk, &bytes);
	if (err)
		return err < 0 ? err : -EIO;

	if (d->disk.ops->can_discard && d->disk.ops->can_discard(d->disk)) {
		lim.max_hw_discard_sectors = UINT_MAX >> SECTOR_SHIFT;
		lim.max_write_zeroes_sectors = UINT_MAX >> SECTOR_SHIFT;
		lim.discard_granularity = 4096;
	}

	d->irq = host_irq_alloc();
	if (d->irq < 0)
		return d->irq;
	err = request_irq(d->irq, disk_interrupt, 0, "disk", d);
	if (err)
		goto free_irq_nr;

	INIT_LIST_HEAD(&d->submitted);
	INIT_LIST_HEAD(&d->completed);
	d->stop = false;
	d->lock = lkl_ops->mutex_alloc(0);
	d->write_lock = lkl_ops->mutex_alloc(0);
	d->work = lkl_ops->sem_alloc(0);
	err = -ENOMEM;
	if (!d->lock || !d->write_lock || !d->work)
		goto free_host;

	memset(&d->tags, 0, sizeof(d->tags));
	d->tags.ops = &disk_mq_ops;
	d->tags.nr_hw_queues = 1;
	d->tags.queue_depth = QUEUE_DEPTH;
	d->tags.numa_node = NUMA_NO_NODE;
	d->tags.cmd_size = sizeof(struct disk_io);
	err = blk_mq_alloc_tag_set(&d->tags);
	if (err)
		goto free_host;

	d->gd = blk_mq_alloc_disk(&d->tags, &lim, d);
	if (IS_ERR(d->gd)) {
		err = PTR_ERR(d->gd);
		goto free_tags;
	}
	d->gd->major = disk_major;
	d->gd->first_minor = d->id * MINORS;
	d->gd->minors = MINORS;
	d->gd->fops = &disk_fops;
	d->gd->private_data = d;
	snprintf(d->gd->disk_name, DISK_NAME_LEN, "lkl%d", d->id);
	set_capacity(d->gd, bytes >> SECTOR_SHIFT);
	if (d->disk.ops->read_only && d->disk.ops->read_only(d->disk))
		set_disk_ro(d->gd, true);

	for (i = 0; i < IO_THREADS; i++) {
		d->threads[i] = lkl_ops->thread_create(io_thread, d);
		if (!d->threads[i]) {
			err = -ENOMEM;
			goto stop_threads;
		}
	}

	err = add_disk(d->gd);
	if (err)
		goto stop_threads;
	d->registered = true;
	return 0;

stop_threads:
	stop_io_threads(d);
	put_disk(d->gd);
free_tags:
	blk_mq_free_tag_set(&d->tags);
free_host:
	free_host_state(d);
	free_irq(d->irq, d);
free_irq_nr:
	host_irq_free(d->irq);
	return err;
}

static void disk_unregister(struct host_disk *d)
{
	del_gendisk(d->gd);
	stop_io_threads(d);
	put_disk(d->gd);
	blk_mq_free_tag_set(&d->tags);
	free_host_state(d);
	free_irq(d->irq, d);
	host_irq_free(d->irq);
	d->registered = false;
}

/* Disks added before boot are registered once the block layer is up. */
static int __init disks_init(void)
{
	int i, err;

	for (i = 0; i < MAX_DISKS; i++) {
		if (!disks[i].used)
			continue;
		err = disk_register(&disks[i]);
		if (err) {
			pr_err("lkl: disk %d: cannot register: %d\n", i, err);
			disks[i].used = false;
		}
	}
	return 0;
}
device_initcall(disks_init);

static long disk_add_call(void *arg)
{
	struct host_disk *d = arg;
	long err;

	mutex_lock(&disks_mutex);
	err = disk_register(d);
	if (err)
		d->used = false;
	mutex_unlock(&disks_mutex);
	return err ? err : d->id;
}

/**
 * lkl_disk_add - attach a host disk
 *
 * Before boot the disk is registered during boot; afterwards at once.
 * Returns the disk id (>= 0) or a negative errno.
 */
int lkl_disk_add(struct lkl_disk *disk)
{
	static struct lkl_mutex *slots_lock;
	struct host_disk *d = NULL;
	struct lkl_dev_blk_ops *ops;
	int i;

	if (!disk || !lkl_ops)
		return -EINVAL;
	ops = disk->ops ? disk->ops : &lkl_dev_blk_ops;
	if (!ops->get_capacity || !ops->request)
		return -EINVAL;

	/* Host-side lock: slots are claimed before and after boot alike. */
	if (!slots_lock)
		slots_lock = lkl_ops->mutex_alloc(0);
	if (!slots_lock)
		return -ENOMEM;
	lkl_ops->mutex_lock(slots_lock);
	for (i = 0; i < MAX_DISKS; i++) {
		if (!disks[i].used) {
			d = &disks[i];
			memset(d, 0, sizeof(*d));
			d->used = true;
			d->id = i;
			d->disk = *disk;
			d->disk.ops = ops;
			break;
		}
	}
	lkl_ops->mutex_unlock(slots_lock);
	if (!d)
		return -ENOSPC;

	if (!lkl_is_running())
		return d->id;
	return kernel_call(disk_add_call, d);
}

static long disk_remove_call(void *arg)
{
	struct host_disk *d = arg;

	mutex_lock(&disks_mutex);
	if (d->registered)
		disk_unregister(d);
	d->used = false;
	mutex_unlock(&disks_mutex);
	return 0;
}

static struct host_disk *find_disk(struct lkl_disk *disk)
{
	struct lkl_dev_blk_ops *ops = disk->ops ? disk->ops : &lkl_dev_blk_ops;
	int i;

	for (i = 0; i < MAX_DISKS; i++)
		if (disks[i].used && disks[i].disk.ops == ops &&
		    disks[i].disk.dev == disk->dev &&
		    disks[i].disk.handle == disk->handle)
			return &disks[i];
	return NULL;
}

/* Detach a disk added with lkl_disk_add(); it must not be mounted. */
int lkl_disk_remove(struct lkl_disk disk)
{
	struct host_disk *d = find_disk(&disk);

	if (!d)
		return -ENOENT;
	if (!lkl_is_running()) {
		d->used = false;
		return 0;
	}
	return kernel_call(disk_remove_call, d);
}

/*
 * The device number of a disk (part 0) or of one of its partitions, in
 * the kernel's user-space encoding (as for mknod).
 */
int lkl_disk_devt(int disk_id, unsigned int part, unsigned int *devt)
{
	struct host_disk *d;

	if (disk_id < 0 || disk_id >= MAX_DISKS || !devt)
		return -EINVAL;
	d = &disks[disk_id];
	if (!d->used || !d->registered)
		return -ENODEV;
	if (part >= MINORS)
		return -ENXIO;
	*devt = new_encode_dev(MKDEV(disk_major, d->id * MINORS + part));
	return 0;
}

/* Halt: the I/O threads must be gone before the RAM is. */
void disks_halt(void)
{
	int i;

	for (i = 0; i < MAX_DISKS; i++)
		if (disks[i].registered)
			stop_io_threads(&disks[i]);
}
