// SPDX-License-Identifier: GPL-2.0
/*
 * Interrupts. The interrupt flag is one global. Host threads raise an
 * interrupt with lkl_trigger_irq(): if the CPU is free, the raising thread
 * takes it and runs the handler itself; if not, the interrupt is marked
 * pending and the owner runs it when it enables interrupts or leaves.
 */
#include <linux/interrupt.h>
#include <linux/irq.h>
#include <linux/hardirq.h>
#include <linux/irqchip.h>
#include <asm/irq_regs.h>
#include <asm/cpu.h>
#include <asm/library.h>

unsigned long lkl_irq_flag = ARCH_IRQ_DISABLED;
int lkl_irqs_pending;		/* some bit of pending[] may be set */
static unsigned long pending[BITS_TO_LONGS(NR_IRQS)];
static bool running_irqs;

/* Some generic code (the tick) only does its work when regs are given. */
static struct pt_regs dummy_regs;

bool irqs_pending(void)
{
	return __atomic_load_n(&lkl_irqs_pending, __ATOMIC_SEQ_CST);
}

static void run_irq(int irq)
{
	struct pt_regs *old_regs = set_irq_regs(&dummy_regs);

	irq_enter();
	generic_handle_irq(irq);
	irq_exit();
	set_irq_regs(old_regs);
}

/* Called by the CPU owner with interrupts enabled. */
void run_pending_irqs(void)
{
	int i, bit;

	if (running_irqs || !irqs_pending())
		return;
	running_irqs = true;
	while (__atomic_exchange_n(&lkl_irqs_pending, 0, __ATOMIC_SEQ_CST)) {
		for (i = 0; i < ARRAY_SIZE(pending); i++) {
			unsigned long word;

			word = __atomic_exchange_n(&pending[i], 0,
						   __ATOMIC_SEQ_CST);
			while (word) {
				bit = __ffs(word);
				word &= ~(1UL << bit);
				lkl_irq_flag = ARCH_IRQ_DISABLED;
				run_irq(i * BITS_PER_LONG + bit);
				lkl_irq_flag = ARCH_IRQ_ENABLED;
			}
		}
	}
	running_irqs = false;
}

/**
 * lkl_trigger_irq - raise an interrupt from any host thread
 * @irq: an interrupt number obtained from host_irq_alloc()
 *
 * Never blocks on the kernel and may be called from any host thread but
 * never from a host callback that runs with the CPU held.
 */
int lkl_trigger_irq(int irq)
{
	if (irq <= 0 || irq >= NR_IRQS)
		return -EINVAL;
	if (lkl_halted)
		return -ESHUTDOWN;

	__atomic_fetch_or(&pending[irq / BITS_PER_LONG],
			  1UL << (irq % BITS_PER_LONG), __ATOMIC_SEQ_CST);
	__atomic_store_n(&lkl_irqs_pending, 1, __ATOMIC_SEQ_CST);

	if (cpu_try_get())
		cpu_leave();
	return 0;
}

static DEFINE_SPINLOCK(free_irqs_lock);
static DECLARE_BITMAP(used_irqs, NR_IRQS);

/* Interrupt numbers for host devices (disks), allocated at registration. */
int host_irq_alloc(void)
{
	unsigned long flags;
	int irq;

	spin_lock_irqsave(&free_irqs_lock, flags);
	irq = find_next_zero_bit(used_irqs, NR_IRQS, 1);
	if (irq < NR_IRQS)
		__set_bit(irq, used_irqs);
	else
		irq = -EBUSY;
	spin_unlock_irqrestore(&free_irqs_lock, flags);
	return irq;
}

void host_irq_free(int irq)
{
	unsigned long flags;

	spin_lock_irqsave(&free_irqs_lock, flags);
	__clear_bit(irq, used_irqs);
	spin_unlock_irqrestore(&free_irqs_lock, flags);
}

void __init init_IRQ(void)
{
	int irq;

	for (irq = 0; irq < NR_IRQS; irq++)
		irq_set_chip_and_handler(irq, &dummy_irq_chip, handle_simple_irq);
}
