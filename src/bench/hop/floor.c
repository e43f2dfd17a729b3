/* The C floor for a sockmap hop: the same ping-pong as peer.ts, without Node. Inherits the
 * sockets for keys 1 and 2 on fds 3 and 4 (both in baton's sockmap), forks: the child
 * echoes on fd 4, the parent pings on fd 3. Frames are real descriptors (magic, version, the
 * true sender, request i+1 in slot i), so the sockmap program checks them as it checks baton's.
 *   floor latency N   → N round-trip times in ns, one per line
 *   floor saturate INFLIGHT MS → "TRIPS CPU_MS": round trips in MS milliseconds, CPU of both */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define DESC 64
#define MAGIC 0xba70
#define VERSION 2
#define KIND_CALL 1

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int read_full(int fd, char *buf, size_t n) {
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0) return -1;
		got += (size_t)r;
	}
	return 0;
}

static void put32(char *buf, int at, uint32_t v) { memcpy(buf + at, &v, 4); }

static void put16(char *buf, int at, uint16_t v) { memcpy(buf + at, &v, 2); }

/* descriptor for in-flight request `req` (1..), from `sender` to `key` (function key - 1) */
static void frame(char *buf, uint32_t key, uint32_t sender, uint32_t req) {
	uint16_t magic = MAGIC;
	memset(buf, 0, DESC);
	put32(buf, 0, key);
	memcpy(buf + 4, &magic, 2);
	buf[6] = VERSION;
	buf[7] = KIND_CALL;
	put32(buf, 8, req);  /* request */
	put32(buf, 12, 1);   /* generation */
	put32(buf, 16, req - 1); /* slot */
	put16(buf, 28, (uint16_t)(key - 1)); /* the function the receiver runs */
	put32(buf, 32, sender);
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	pid_t echo = fork();
	if (echo == 0) {
		char buf[DESC];
		while (read_full(4, buf, DESC) == 0) {
			put32(buf, 0, 1);  /* back to key 1 (function 0) */
			put16(buf, 28, 0);
			put32(buf, 32, 2); /* from key 2 */
			if (write(4, buf, DESC) != DESC) break;
		}
		_exit(0);
	}
	char buf[DESC];
	if (strcmp(argv[1], "latency") == 0) {
		long n = atol(argv[2]);
		for (long i = 0; i < n; i++) {
			uint64_t t0 = now_ns();
			frame(buf, 2, 1, 1);
			if (write(3, buf, DESC) != DESC || read_full(3, buf, DESC)) return 1;
			printf("%llu\n", (unsigned long long)(now_ns() - t0));
		}
	} else {
		long inflight = atol(argv[2]), ms = atol(argv[3]), trips = 0;
		for (long i = 0; i < inflight; i++) {
			frame(buf, 2, 1, (uint32_t)i + 1);
			if (write(3, buf, DESC) != DESC) return 1;
		}
		uint64_t until = now_ns() + (uint64_t)ms * 1000000ull;
		while (now_ns() < until) {
			if (read_full(3, buf, DESC)) return 1;
			trips++;
			put32(buf, 0, 2);  /* the same request, back to key 2 (function 1) */
			put16(buf, 28, 1);
			put32(buf, 32, 1);
			if (write(3, buf, DESC) != DESC) return 1;
		}
		/* take back what is still in flight, so every slot ends held by key 1 again
		 * (the kernel would refuse the next run's descriptors for slots key 2 kept) */
		for (long i = 0; i < inflight; i++)
			if (read_full(3, buf, DESC)) return 1;
		kill(echo, SIGKILL);
		waitpid(echo, NULL, 0);
		struct rusage self, kids;
		getrusage(RUSAGE_SELF, &self);
		getrusage(RUSAGE_CHILDREN, &kids);
		double cpu_ms = (self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec + kids.ru_stime.tv_sec) * 1e3 +
		                (self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) / 1e3;
		printf("%ld %.3f\n", trips, cpu_ms);
		return 0;
	}
	kill(echo, SIGKILL);
	waitpid(echo, NULL, 0);
	return 0;
}
