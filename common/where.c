// SPDX-License-Identifier: MIT
/* Breadcrumbs for hangs (where.h). */
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/atomics.h"
#include "common/where.h"

#define WHERE_SLOTS 64 /* threads that ever left a breadcrumb; later ones leave none */

struct where_slot {
	_Atomic(const char *) what;
	_Atomic unsigned arg;
	_Atomic uint64_t since_ms;
	int tid;
};

static struct where_slot slots[WHERE_SLOTS];
static _Atomic unsigned nslots;
static __thread int my_slot = -1; /* -2: the table was full */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void gpuos_where(const char *what, unsigned arg)
{
	struct where_slot *s;

	if (my_slot == -1) {
		unsigned i = atomic_fetch_add(&nslots, 1);

		my_slot = i < WHERE_SLOTS ? (int)i : -2;
		if (my_slot >= 0)
			slots[i].tid = (int)syscall(SYS_gettid);
	}
	if (my_slot < 0)
		return;
	s = &slots[my_slot];
	store_relaxed(&s->arg, arg);
	store_relaxed(&s->since_ms, now_ms());
	/* release: arg and since before what; pairs with the acquire in gpuos_where_dump (a
	 * dump of a live process may still mix two breadcrumbs: it is a hint) */
	store_release(&s->what, what);
}

void gpuos_where_dump(int fd)
{
	unsigned n = load_relaxed(&nslots);
	uint64_t now = now_ms();

	for (unsigned i = 0; i < n && i < WHERE_SLOTS; i++) {
		/* acquire: pairs with the release in gpuos_where */
		const char *what = load_acquire(&slots[i].what);

		if (what)
			dprintf(fd, "gpuos:   thread %d: %s %u for %llu ms\n", slots[i].tid, what,
				load_relaxed(&slots[i].arg),
				(unsigned long long)(now - load_relaxed(&slots[i].since_ms)));
	}
}
