// SPDX-License-Identifier: GPL-2.0
/* The kernel log goes to the host's print operation, when it has one. */
#include <linux/console.h>
#include <linux/init.h>
#include <asm/cpu.h>

static void host_console_write(struct console *con, const char *str,
			       unsigned int len)
{
	if (lkl_ops->print)
		lkl_ops->print(str, len);
}

static struct console host_console = {
	.name	= "host",
	.write	= host_console_write,
	.flags	= CON_PRINTBUFFER | CON_ENABLED,
	.index	= -1,
};

void __init host_console_init(void)
{
	register_console(&host_console);
}
