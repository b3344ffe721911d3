// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "log.h"

int gpuos_log_level = GPUOS_LOG_WARN;

/* Rate limit: at most LOG_BURST messages per second, then one "suppressed" note. */
#define LOG_BURST 50

static _Atomic long log_window;
static _Atomic int log_count;
static __thread int log_depth; /* re-entry guard: a hook that logs from inside gpuos_log */

int gpuos_log_parse_level(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	if (!s)
		return -EINVAL;
	if (!strcmp(s, "off") || !strcmp(s, "none"))
		return GPUOS_LOG_OFF;
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	if (s[0] >= '0' && s[0] <= '3' && s[1] == '\0')
		return s[0] - '0';
	return -EINVAL;
}

void gpuos_log(int level, const char *fmt, ...)
{
	char buf[512];
	struct timespec ts;
	va_list ap;
	int n;

	if (level > gpuos_log_level || log_depth)
		return;
	log_depth++;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	if (atomic_exchange_explicit(&log_window, ts.tv_sec, memory_order_relaxed) != ts.tv_sec)
		store_relaxed(&log_count, 0);
	n = atomic_fetch_add_explicit(&log_count, 1, memory_order_relaxed);
	if (n > LOG_BURST)
		goto out;

	if (n == LOG_BURST) {
		n = snprintf(buf, sizeof(buf), "gpuos: too many messages, dropping for a second\n");
	} else {
		int p = snprintf(buf, sizeof(buf), "gpuos: ");
		va_start(ap, fmt);
		n = vsnprintf(buf + p, sizeof(buf) - p - 1, fmt, ap);
		va_end(ap);
		if (n < 0)
			goto out;
		n += p;
		if ((size_t)n > sizeof(buf) - 2)
			n = sizeof(buf) - 2;
		if (buf[n - 1] != '\n')
			buf[n++] = '\n';
	}
	/* stderr only, one write so lines from threads do not interleave */
	while (write(STDERR_FILENO, buf, n) < 0 && errno == EINTR)
		;
out:
	log_depth--;
}
