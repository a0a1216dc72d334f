// SPDX-License-Identifier: GPL-2.0
/*
 * vmap() without an MMU of our own: the host aliases the RAM pages at a
 * contiguous address of its address space (lkl_host_operations.vmap).
 * Pages that already are contiguous need no alias. mm/nommu.c's versions
 * BUG(); ours replace them (patches/0001).
 */
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/vmalloc.h>
#include <asm/cpu.h>

struct alias {
	struct list_head node;
	void *addr;
	unsigned int count;
};

static LIST_HEAD(aliases);
static DEFINE_SPINLOCK(aliases_lock);

static bool contiguous(struct page **pages, unsigned int count)
{
	unsigned int i;

	for (i = 1; i < count; i++)
		if (page_to_pfn(pages[i]) != page_to_pfn(pages[0]) + i)
			return false;
	return true;
}

static void *map_pages(struct page **pages, unsigned int count)
{
	struct alias *alias;
	void **addrs;
	unsigned int i;

	if (!count)
		return NULL;
	if (contiguous(pages, count))
		return page_address(pages[0]);
	if (!lkl_ops->vmap)
		return NULL;

	/* NOIO: callers include decompression on the I/O path. */
	alias = kmalloc(sizeof(*alias), GFP_NOIO);
	addrs = kmalloc_array(count, sizeof(*addrs), GFP_NOIO);
	if (!alias || !addrs)
		goto fail;
	for (i = 0; i < count; i++)
		addrs[i] = page_address(pages[i]);
	alias->addr = lkl_ops->vmap((void *const *)addrs, count);
	if (!alias->addr)
		goto fail;
	kfree(addrs);

	alias->count = count;
	spin_lock(&aliases_lock);
	list_add(&alias->node, &aliases);
	spin_unlock(&aliases_lock);
	return alias->addr;

fail:
	kfree(addrs);
	kfree(alias);
	return NULL;
}

/* Addresses that are not host aliases were contiguous RAM: nothing to undo. */
static void unmap(const void *addr)
{
	struct alias *alias, *found = NULL;

	spin_lock(&aliases_lock);
	list_for_each_entry(alias, &aliases, node) {
		if (alias->addr == addr) {
			list_del(&alias->node);
			found = alias;
			break;
		}
	}
	spin_unlock(&aliases_lock);
	if (!found)
		return;
	lkl_ops->vunmap(found->addr, found->count);
	kfree(found);
}

void *vmap(struct page **pages, unsigned int count, unsigned long flags,
	   pgprot_t prot)
{
	return map_pages(pages, count);
}

void vunmap(const void *addr)
{
	unmap(addr);
}

void *vm_map_ram(struct page **pages, unsigned int count, int node)
{
	return map_pages(pages, count);
}

void vm_unmap_ram(const void *mem, unsigned int count)
{
	unmap(mem);
}
