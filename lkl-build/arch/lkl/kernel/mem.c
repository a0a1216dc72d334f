// SPDX-License-Identifier: GPL-2.0
/*
 * Memory: one host allocation of mem= bytes is all the kernel's RAM
 * (flat memory, physical address == host virtual address).
 */
#include <linux/init.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/pfn.h>
#include <asm/cpu.h>

unsigned long memory_start, memory_end;
void *empty_zero_page;

static unsigned long mem_size = (unsigned long)CONFIG_LKL_RAM_DEFAULT_MB << 20;
static void *ram;
static unsigned long ram_size;

/*
 * lkl_prefault: a host thread populates the RAM from the bottom up while
 * the kernel runs. The buddy allocator hands out low pages first, so the
 * populating stays ahead of the page cache, and a large write no longer
 * pays a host page fault (and the host's zeroing) per page on the
 * kernel's single CPU: about a quarter of the time of a 1 GiB ext4 write
 * on a 2-core host. It costs the RAM's full size in host memory, so it is
 * for bulk jobs, not the default.
 */
static bool prefault;
static bool prefault_stop;
static lkl_thread_t prefault_thread;

static int __init parse_prefault(char *arg)
{
	prefault = true;
	return 0;
}
early_param("lkl_prefault", parse_prefault);

#define PREFAULT_CHUNK	(2UL << 20)

static void prefault_ram(void *arg)
{
	unsigned long addr, len;

	for (addr = memory_start; addr < memory_end; addr += len) {
		if (READ_ONCE(prefault_stop))
			break;
		len = min(PREFAULT_CHUNK, memory_end - addr);
		if (lkl_ops->page_populate((void *)addr, len))
			break;
	}
}

static int __init parse_mem(char *arg)
{
	mem_size = memparse(arg, &arg);
	return 0;
}
early_param("mem", parse_mem);

/* Keep buddy blocks naturally aligned: align RAM to the largest order. */
#define RAM_ALIGN	(PAGE_SIZE << MAX_PAGE_ORDER)

void __init bootmem_init(void)
{
	unsigned long max_zone_pfns[MAX_NR_ZONES] = { 0 };

	mem_size = PAGE_ALIGN(mem_size);
	if (mem_size < (16UL << 20))
		panic("mem=%lu is too small, the kernel needs at least 16M",
		      mem_size);

	ram_size = mem_size + RAM_ALIGN;
	ram = lkl_ops->page_alloc(ram_size);
	if (!ram)
		panic("cannot allocate %lu bytes of RAM from the host", ram_size);

	memory_start = ALIGN((unsigned long)ram, RAM_ALIGN);
	memory_end = memory_start + mem_size;
	high_memory = (void *)memory_end;
	max_mapnr = mem_size >> PAGE_SHIFT;
	min_low_pfn = PFN_UP(memory_start);
	max_low_pfn = PFN_DOWN(memory_end);
	max_pfn = max_low_pfn;

	memblock_add(memory_start, mem_size);

	empty_zero_page = memblock_alloc(PAGE_SIZE, PAGE_SIZE);
	if (!empty_zero_page)
		panic("cannot allocate the zero page");

	max_zone_pfns[ZONE_NORMAL] = max_low_pfn;
	free_area_init(max_zone_pfns);

	if (prefault && lkl_ops->page_populate) {
		prefault_thread = lkl_ops->thread_create(prefault_ram, NULL);
		if (!prefault_thread)
			pr_warn("lkl_prefault: cannot create the host thread\n");
	}
}

void __init mem_init(void)
{
	memblock_free_all();
}

/* __init sections live in the host binary, not in our RAM: keep them. */
void free_initmem(void)
{
}

/* Halt: the RAM goes back to the host. */
void bootmem_free(void)
{
	if (prefault_thread) {
		WRITE_ONCE(prefault_stop, true);
		lkl_ops->thread_join(prefault_thread);
		prefault_thread = 0;
	}
	lkl_ops->page_free(ram, ram_size);
	ram = NULL;
}
