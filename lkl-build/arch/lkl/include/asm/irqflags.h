/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_IRQFLAGS_H
#define _ASM_LKL_IRQFLAGS_H

/*
 * The interrupt flag is one global; enabling it runs interrupts that host
 * threads raised meanwhile (see arch/lkl/kernel/irq.c). Inline: every
 * spin_lock_irqsave() and its unlock come here, and out-of-line calls for
 * what is mostly a load and a store cost about 1% of a copy job's CPU.
 */
#define ARCH_IRQ_DISABLED	0
#define ARCH_IRQ_ENABLED	1

extern unsigned long lkl_irq_flag;
extern int lkl_irqs_pending;
void run_pending_irqs(void);

/* Compiler barriers, as the calls were: no access moves across them. */
#define arch_local_save_flags arch_local_save_flags
static inline unsigned long arch_local_save_flags(void)
{
	__asm__ __volatile__("" : : : "memory");
	return lkl_irq_flag;
}

#define arch_local_irq_restore arch_local_irq_restore
static inline void arch_local_irq_restore(unsigned long flags)
{
	__asm__ __volatile__("" : : : "memory");
	lkl_irq_flag = flags;
	__asm__ __volatile__("" : : : "memory");
	if (flags == ARCH_IRQ_ENABLED &&
	    __atomic_load_n(&lkl_irqs_pending, __ATOMIC_SEQ_CST))
		run_pending_irqs();
}

#include <asm-generic/irqflags.h>

#endif
