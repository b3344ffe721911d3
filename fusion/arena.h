/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_FUSION_ARENA_H
#define GPUOS_FUSION_ARENA_H

/*
 * Parameter buffers too large for a task descriptor (a lifted launch's, ptx_lift.h): chunks
 * of pinned host memory the worker reads through the mapping. A chunk is taken before its
 * task reserves a ring position, tagged with that position once reserved, and free again
 * once the ring's worker has finished the task (sh_done passed it). Taking one never waits
 * on a task that is not yet published, so it cannot deadlock: it gives up after @spins
 * looks and the caller runs the launch itself.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "fusion/ring.h"

#define GPUOS_ARENA_CHUNK  4096u /* = the largest parameter buffer (GPUOS_LIFT_PARAMS_MAX) */
#define GPUOS_ARENA_CHUNKS 256u

struct gpuos_arena {
	unsigned char *host; /* GPUOS_ARENA_CHUNKS * GPUOS_ARENA_CHUNK bytes */
	uint64_t dev;	     /* the same memory's device address */
	_Atomic uint32_t next;
	_Atomic uint64_t tag[GPUOS_ARENA_CHUNKS]; /* 0 free, 1 held, else a task's ring and pos */
};

/* @host: zeroed memory the worker can read at @dev (plain memory in tests), 4096-aligned: a
 * task carries its block's length in the address's low bits (kernels/task.h). */
void gpuos_arena_init(struct gpuos_arena *a, void *host, uint64_t dev);

/*
 * Take a chunk and copy @n bytes (<= GPUOS_ARENA_CHUNK) of @src into it; @rings says which
 * tagged chunks are done. Returns the chunk index, or -EAGAIN when none came free in @spins
 * looks, -EINVAL if @n is too large.
 */
int gpuos_arena_get(struct gpuos_arena *a, const struct gpuos_ring *rings, const void *src,
		    size_t n, unsigned spins);

/* The device address of chunk @c. */
static inline uint64_t gpuos_arena_addr(const struct gpuos_arena *a, int c)
{
	return a->dev + (uint64_t)c * GPUOS_ARENA_CHUNK;
}

/* Chunk @c belongs to the task at @pos of ring @ring from now on (its reservation). */
void gpuos_arena_tag(struct gpuos_arena *a, int c, unsigned ring, uint32_t pos);

/* Give chunk @c back untagged (its task was never reserved). */
void gpuos_arena_put(struct gpuos_arena *a, int c);

#endif
