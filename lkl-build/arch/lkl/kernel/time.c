// SPDX-License-Identifier: GPL-2.0
/*
 * Time from the host: the clocksource is the host's monotonic clock in
 * nanoseconds, the clock event device a one-shot host timer whose callback
 * raises the timer interrupt, and the wall clock is read once at boot.
 */
#include <linux/clocksource.h>
#include <linux/clockchips.h>
#include <linux/delay.h>
#include <linux/interrupt.h>
#include <linux/init.h>
#include <linux/sched_clock.h>
#include <linux/sched/clock.h>
#include <linux/timekeeping.h>
#include <asm/cpu.h>
#include <asm/library.h>

static unsigned long long boot_ns;
static void *timer;
static int timer_irq;

/* lkl_epoch=<seconds>: the wall clock at boot, for reproducible images. */
static long long boot_epoch = -1;

static int __init parse_epoch(char *arg)
{
	return kstrtoll(arg, 10, &boot_epoch);
}
early_param("lkl_epoch", parse_epoch);

unsigned long long sched_clock(void)
{
	return lkl_ops->time() - boot_ns;
}

static u64 host_clock_read(struct clocksource *cs)
{
	return lkl_ops->time();
}

static struct clocksource host_clocksource = {
	.name	= "host",
	.rating	= 400,
	.read	= host_clock_read,
	.mask	= CLOCKSOURCE_MASK(64),
	.flags	= CLOCK_SOURCE_IS_CONTINUOUS | CLOCK_SOURCE_VALID_FOR_HRES,
	.mult	= 1,
	.shift	= 0,
};

static int host_timer_next_event(unsigned long delta,
				 struct clock_event_device *evt)
{
	return lkl_ops->timer_set_oneshot(timer, delta);
}

static struct clock_event_device host_clockevent = {
	.name			= "host",
	.features		= CLOCK_EVT_FEAT_ONESHOT,
	.set_next_event		= host_timer_next_event,
	.rating			= 400,
	.irq			= -1,
};

static irqreturn_t timer_interrupt(int irq, void *dev)
{
	if (host_clockevent.event_handler)
		host_clockevent.event_handler(&host_clockevent);
	return IRQ_HANDLED;
}

/* Runs on the host's timer thread. */
static void host_timer_fired(void *arg)
{
	lkl_trigger_irq(timer_irq);
}

void read_persistent_clock64(struct timespec64 *ts)
{
	unsigned long long ns;

	if (boot_epoch >= 0) {
		ts->tv_sec = boot_epoch;
		ts->tv_nsec = 0;
		return;
	}
	ns = lkl_ops->wall_time();
	ts->tv_sec = ns / NSEC_PER_SEC;
	ts->tv_nsec = ns % NSEC_PER_SEC;
}

void __init time_init(void)
{
	int err;

	boot_ns = lkl_ops->time();
	timer_irq = host_irq_alloc();
	timer = lkl_ops->timer_alloc(host_timer_fired, NULL);
	if (timer_irq < 0 || !timer)
		panic("cannot set up the host timer");

	err = request_irq(timer_irq, timer_interrupt, IRQF_TIMER, "timer", NULL);
	if (err)
		panic("cannot request the timer interrupt: %d", err);

	err = clocksource_register_hz(&host_clocksource, NSEC_PER_SEC);
	if (err)
		panic("cannot register the host clocksource: %d", err);

	/* Ticks are nanoseconds; the limits keep deltas within a host timer's range. */
	clockevents_config_and_register(&host_clockevent, NSEC_PER_SEC, 1000,
					LONG_MAX);
}

/* Halt: no timer may fire into a kernel that is going away. */
void time_halt(void)
{
	if (timer)
		lkl_ops->timer_free(timer);
	timer = NULL;
}

void calibrate_delay(void)
{
}

void __ndelay(unsigned long nsecs)
{
	unsigned long long end = lkl_ops->time() + nsecs;

	while (lkl_ops->time() < end)
		cpu_relax();
}

void __udelay(unsigned long usecs)
{
	__ndelay(usecs * NSEC_PER_USEC);
}

void __delay(unsigned long loops)
{
	__ndelay(loops);
}
