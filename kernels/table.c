// SPDX-License-Identifier: MIT
/* The dual-slot alias state machine of table.h: pure logic, unit-tested without a GPU. */
#include <errno.h>
#include <string.h>

#include "fusion/ring.h"
#include "kernels/table.h"

void gpuos_alias_init(struct gpuos_alias *a, unsigned nrings)
{
	memset(a, 0, sizeof(*a));
	a->nrings = nrings;
}

static bool passed(const struct gpuos_alias *a, unsigned s, const uint32_t *done)
{
	for (unsigned r = 0; r < a->nrings; r++)
		if (!gpuos_ring_passed(done[r], a->fence[s][r]))
			return false;
	return true;
}

bool gpuos_alias_poll(struct gpuos_alias *a, const uint32_t *done)
{
	bool changed = false;

	for (unsigned s = 0; s < 2; s++) {
		if (a->state[s] == GPUOS_PHYS_RETIRING && passed(a, s, done)) {
			a->state[s] = GPUOS_PHYS_STANDBY;
			changed = true;
		}
	}
	return changed;
}

int gpuos_alias_prepare(struct gpuos_alias *a, const uint32_t *done, unsigned *slot)
{
	unsigned s;

	if (a->state[0] == GPUOS_PHYS_EMPTY && a->state[1] == GPUOS_PHYS_EMPTY) {
		*slot = 0;
		return 0;
	}
	s = !a->active;
	gpuos_alias_poll(a, done);
	if (a->state[s] == GPUOS_PHYS_RETIRING)
		return -EBUSY;
	*slot = s;
	return 0;
}

static void retire(struct gpuos_alias *a, unsigned s, const uint32_t *tails)
{
	a->state[s] = GPUOS_PHYS_RETIRING;
	memcpy(a->fence[s], tails, a->nrings * sizeof(*tails));
}

void gpuos_alias_commit(struct gpuos_alias *a, unsigned slot, uint32_t version,
			const uint32_t *tails)
{
	unsigned old = a->active;

	a->state[slot] = GPUOS_PHYS_LIVE;
	a->version[slot] = version;
	a->active = (uint8_t)slot;
	if (old != slot && a->state[old] == GPUOS_PHYS_LIVE)
		retire(a, old, tails);
}

int gpuos_alias_rollback(struct gpuos_alias *a, const uint32_t *tails)
{
	unsigned o = !a->active;

	if (a->state[o] != GPUOS_PHYS_RETIRING && a->state[o] != GPUOS_PHYS_STANDBY)
		return -ENOENT;
	a->state[o] = GPUOS_PHYS_LIVE;
	a->active = (uint8_t)o;
	retire(a, !o, tails);
	return 0;
}
