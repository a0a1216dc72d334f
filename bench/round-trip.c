// SPDX-License-Identifier: GPL-2.0
/*
 * What one request to a server process costs on this machine, and what
 * one request to a mount costs: the floor under every FUSE request (see
 * mount.mjs, which builds and runs this).
 *
 *   round-trip pipe         a byte sent to another process and back over
 *                           pipes, that process polling for it (as the
 *                           mount's daemon does between requests): two
 *                           processes, one wakeup per round trip
 *   round-trip statfs PATH  statfs(2) of PATH (on a FUSE mount, one
 *                           request each)
 *
 * Prints the mean in microseconds of the best of three batches.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 20000

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* The other process: each byte that comes in goes back. */
static void echo_polling(int in, int out)
{
	char c;
	ssize_t n;

	fcntl(in, F_SETFL, O_NONBLOCK);
	for (;;) {
		n = read(in, &c, 1);
		if (n == 0)
			_exit(0);
		if (n == 1 && write(out, &c, 1) != 1)
			_exit(1);
		if (n < 0 && errno != EAGAIN)
			_exit(1);
	}
}

static double pipe_batch(int to, int from)
{
	double t = now();
	char c = 'x';

	for (int i = 0; i < BATCH; i++) {
		if (write(to, &c, 1) != 1 || read(from, &c, 1) != 1) {
			perror("round-trip: pipe");
			exit(1);
		}
	}
	return (now() - t) / BATCH;
}

static double statfs_batch(const char *path)
{
	double t = now();
	struct statfs st;

	for (int i = 0; i < BATCH; i++) {
		if (statfs(path, &st) < 0) {
			perror(path);
			exit(1);
		}
	}
	return (now() - t) / BATCH;
}

int main(int argc, char **argv)
{
	int to[2], from[2];
	double best = 1e9, t;
	pid_t child = -1;

	if (argc == 2 && !strcmp(argv[1], "pipe")) {
		if (pipe(to) < 0 || pipe(from) < 0)
			return perror("pipe"), 1;
		child = fork();
		if (child == 0) {
			close(to[1]);
			close(from[0]);
			echo_polling(to[0], from[1]);
		}
		close(to[0]);
		close(from[1]);
	} else if (!(argc == 3 && !strcmp(argv[1], "statfs"))) {
		fprintf(stderr, "usage: round-trip pipe | round-trip statfs PATH\n");
		return 2;
	}
	for (int i = 0; i < 3; i++) {
		t = child > 0 ? pipe_batch(to[1], from[0]) : statfs_batch(argv[2]);
		if (t < best)
			best = t;
	}
	if (child > 0) {
		close(to[1]);
		waitpid(child, NULL, 0);
	}
	printf("%.2f\n", best * 1e6);
	return 0;
}
