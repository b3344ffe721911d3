/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_KERNELS_TABLE_H
#define GPUOS_KERNELS_TABLE_H

/*
 * Dual-slot aliasing of an injected operator. Each logical operator owns two physical slots of
 * the worker's table; tasks carry the physical one, chosen under the submit lock from
 * `active`. An update loads the new code into the other slot, then switches `active`; the old
 * slot becomes RETIRING with a fence: every ring's tail at the switch. Once every ring's done
 * count has passed its fence, no task that may name the slot is in flight: it is STANDBY
 * (still loaded: a rollback target) and may be overwritten by the next update.
 *
 *   EMPTY --load--> LIVE --switch away--> RETIRING --rings passed fence--> STANDBY
 *     ^                ^                      |                               |
 *     |                +------rollback--------+-------------------------------+
 *     +----------- (a STANDBY slot is reused by the next load) ---------------+
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernels/task.h"

enum gpuos_phys_state {
	GPUOS_PHYS_EMPTY,
	GPUOS_PHYS_LIVE,
	GPUOS_PHYS_RETIRING,
	GPUOS_PHYS_STANDBY
};

struct gpuos_alias {
	uint8_t active; /* 0 or 1; meaningful once state[active] == LIVE */
	uint8_t state[2];
	uint32_t version[2]; /* the caller's version numbers, for tests and the report */
	uint32_t fence[2][GPUOS_MAX_RINGS];
	unsigned nrings;
	void *module[2];   /* the owner's handle of what is loaded in each slot */
	uint64_t entry[2]; /* the code address each slot's table entry holds */
};

void gpuos_alias_init(struct gpuos_alias *a, unsigned nrings);

/* RETIRING slots whose fence every ring passed (@done[r]: ring r's finished count) become
 * STANDBY. Returns true if a slot changed. */
bool gpuos_alias_poll(struct gpuos_alias *a, const uint32_t *done);

/* The slot a new version goes into: the one not active (0 for the first load). -EBUSY while
 * it is RETIRING (tasks may still use it): poll and try again. */
int gpuos_alias_prepare(struct gpuos_alias *a, const uint32_t *done, unsigned *slot);

/* The new code is loaded and in the table at @slot: make it active. The previously active
 * slot retires behind @tails (each ring's reserve position now). Under the submit lock. */
void gpuos_alias_commit(struct gpuos_alias *a, unsigned slot, uint32_t version,
			const uint32_t *tails);

/* Make the other slot active again, if it holds code (RETIRING or STANDBY); -ENOENT if not.
 * Under the submit lock. */
int gpuos_alias_rollback(struct gpuos_alias *a, const uint32_t *tails);

/* The physical slot index new tasks of logical operator @op use; -EAGAIN if none is live. */
static inline int gpuos_alias_phys(const struct gpuos_alias *a, unsigned op)
{
	return a->state[a->active] == GPUOS_PHYS_LIVE ? (int)(2 * op + a->active) : -EAGAIN;
}

#endif
