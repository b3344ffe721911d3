// SPDX-License-Identifier: MIT
/* Parameter chunks for lifted launches: see arena.h. */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "common/atomics.h"
#include "fusion/arena.h"

#define TAG_FREE 0ull
#define TAG_HELD 1ull
#define TAG_TASK (1ull << 63)

void gpuos_arena_init(struct gpuos_arena *a, void *host, uint64_t dev)
{
	a->host = host;
	a->dev = dev;
	atomic_init(&a->next, 0);
	for (unsigned i = 0; i < GPUOS_ARENA_CHUNKS; i++)
		atomic_init(&a->tag[i], TAG_FREE);
}

static bool reusable(const struct gpuos_ring *rings, uint64_t tag)
{
	if (tag == TAG_FREE)
		return true;
	if (!(tag & TAG_TASK))
		return false; /* held: its task is about to be reserved */
	/* sh_done (acquire) counts the tasks finished; the task at pos is when it passed
	 * pos + 1. Its reads of the chunk completed before then (the worker's fetcher copies
	 * a small block with the descriptor; an operator copies a large one into shared
	 * memory before a barrier that precedes the worker's sh_done store). */
	return gpuos_ring_passed(gpuos_ring_done(&rings[(tag >> 32) & 0xff]), (uint32_t)tag + 1);
}

int gpuos_arena_get(struct gpuos_arena *a, const struct gpuos_ring *rings, const void *src,
		    size_t n, unsigned spins)
{
	if (n > GPUOS_ARENA_CHUNK)
		return -EINVAL;
	for (unsigned s = 0; s <= spins; s++) {
		/* round robin: the chunk after the last one taken is the oldest */
		unsigned c = fetch_add_relaxed(&a->next, 1) % GPUOS_ARENA_CHUNKS;
		uint64_t tag = load_relaxed(&a->tag[c]);

		/* acquire on success: the worker's reads of the chunk's last task (through
		 * sh_done, acquired in reusable()) before our copy into it */
		if (reusable(rings, tag) &&
		    atomic_compare_exchange_strong_explicit(
			&a->tag[c], &tag, TAG_HELD, memory_order_acquire, memory_order_relaxed)) {
			memcpy(a->host + (size_t)c * GPUOS_ARENA_CHUNK, src, n);
			return (int)c;
		}
		if (s % GPUOS_ARENA_CHUNKS == GPUOS_ARENA_CHUNKS - 1)
			sched_yield(); /* every chunk is in flight: let the worker catch up */
	}
	return -EAGAIN;
}

void gpuos_arena_tag(struct gpuos_arena *a, int c, unsigned ring, uint32_t pos)
{
	/* relaxed: the chunk's bytes reach the worker through the task's publication (its
	 * seq release store follows); only this thread reads a held tag's meaning */
	store_relaxed(&a->tag[c], TAG_TASK | (uint64_t)(ring & 0xff) << 32 | pos);
}

void gpuos_arena_put(struct gpuos_arena *a, int c)
{
	store_relaxed(&a->tag[c], TAG_FREE);
}
