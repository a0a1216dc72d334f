// SPDX-License-Identifier: GPL-2.0
/*
 * The lkl_prefault boot option: the kernel's RAM gets backed by host memory
 * in the background, and only with the option; halt stops the prefaulting
 * thread and gives the memory back.
 * prefault on|off
 */
#include "check.h"

#define MEM_MIB 64

/* Host memory behind the kernel's RAM (a memfd), in MiB. */
static long shmem_mib(void)
{
	char line[128];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssShmem: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib < 0 ? -1 : kib >> 10;
}

int main(int argc, char **argv)
{
	int on = argc == 2 && !strcmp(argv[1], "on");
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	long ret, mib = 0;
	int i;

	if (argc != 2 || (!on && strcmp(argv[1], "off"))) {
		fprintf(stderr, "usage: prefault on|off\n");
		return 2;
	}
	lkl_init(&lkl_host_ops);
	ret = lkl_start_kernel("mem=%dM quiet%s", MEM_MIB, on ? " lkl_prefault" : "");
	CHECK("boot", ret == 0, "%s", lkl_strerror(ret));
	if (ret)
		return 1;

	/* Up to 5 s for the whole RAM; without the option, 300 ms of idling. */
	for (i = 0; i < (on ? 500 : 30); i++) {
		mib = shmem_mib();
		if (on && mib >= MEM_MIB)
			break;
		nanosleep(&tick, NULL);
	}
	if (on)
		CHECK("RAM populated", mib >= MEM_MIB, "%ld of %d MiB", mib, MEM_MIB);
	else
		CHECK("RAM populated on demand only", mib >= 0 && mib < MEM_MIB / 2,
		      "%ld of %d MiB resident while idle", mib, MEM_MIB);

	CHECK_CALL("halt", lkl_sys_halt());
	lkl_cleanup();
	mib = shmem_mib();
	CHECK("RAM returned", mib == 0, "%ld MiB still resident", mib);
	return check_failures;
}
