// SPDX-License-Identifier: MIT
/*
 * The producer side of the task ring, and a host consumer with the worker's protocol (used by
 * the unit tests in place of kernels/worker.cu). See ring.h for the rules.
 */
#include <sched.h>
#include <string.h>

#include "common/atomics.h"
#include "common/probe.h"
#include "fusion/ring.h"

#define SH(field) ((_Atomic uint32_t *)&r->sh->field)

void gpuos_ring_init(struct gpuos_ring *r, struct gpuos_task *tasks, struct gpuos_ring_sh *sh)
{
	r->tasks = tasks;
	r->sh = sh;
	/* a ring that already saw work (a worker restarted) continues at the worker's head */
	store_relaxed(SH(sh_tail), load_relaxed(SH(sh_head)));
	atomic_init(&r->head, load_relaxed(SH(sh_head)));
}

unsigned gpuos_ring_wait_room(struct gpuos_ring *r, uint32_t pos, bool (*kick)(void *), void *ctx)
{
	unsigned spins = 0;
	uint32_t head;

	/* The cached head is enough most of the time: reading sh_head, a line the worker keeps
	 * writing, costs a cache miss. acquire: pairs with the release below (which carries the
	 * acquire of sh_head to other producers). */
	if (pos - load_acquire(&r->head) < GPUOS_RING_SIZE)
		return 0;
	/* acquire: pairs with the consumer's release of sh_head after it copied the
	 * descriptors out, so our writes to a reused descriptor come after its reads */
	while (pos - (head = load_acquire(SH(sh_head))) >= GPUOS_RING_SIZE) {
		if (++spins % 1024 == 0) {
			if (kick && kick(ctx))
				return spins + 1; /* no consumer will come */
			sched_yield();
		}
	}
	/* release: publishes what we learnt; a racing older value may overwrite a newer one,
	 * which only costs a later producer one more read of sh_head */
	store_release(&r->head, head);
	return spins + 1;
}

bool gpuos_ring_publish(struct gpuos_ring *r, uint32_t pos, const struct gpuos_task *t)
{
	struct gpuos_task *d = &r->tasks[pos & (GPUOS_RING_SIZE - 1)];
	bool stopped;

	GPUOS_PROBE_BEGIN(t0);
	memcpy((char *)d + sizeof(d->seq), (const char *)t + sizeof(t->seq),
	       sizeof(*t) - sizeof(t->seq));
	/* release: the body above before seq; pairs with the consumer's acquire of seq
	 * (worker.cu fetch, gpuos_ring_fetch) */
	store_release((_Atomic uint32_t *)&d->seq, pos + 1);
	GPUOS_PROBE_END(PUB_STORE, t0);
	GPUOS_PROBE_BEGIN(t1);
	/* full fence: the sh_tail reservation and the seq store before the sh_state load;
	 * pairs with the fence in the worker's try_exit (it stores EXITED, then reads sh_tail):
	 * it sees our position, or we see EXITED */
	atomic_thread_fence(memory_order_seq_cst);
	stopped = load_relaxed(SH(sh_state)) != GPUOS_WORKER_RUNNING;
	GPUOS_PROBE_END(PUB_FENCE, t1);
	return stopped;
}

uint32_t gpuos_ring_done(const struct gpuos_ring *r)
{
	/* acquire: pairs with the consumer's release of sh_done after the tasks ran */
	return load_acquire((_Atomic uint32_t *)&r->sh->sh_done);
}

uint32_t gpuos_ring_done_sys(const struct gpuos_ring *r)
{
	/* acquire: pairs with the consumer's system-scope release of sh_done_sys */
	return load_acquire((_Atomic uint32_t *)&r->sh->sh_done_sys);
}

unsigned gpuos_ring_fetch(struct gpuos_ring *r, struct gpuos_task *out, unsigned max)
{
	uint32_t head = load_relaxed(SH(sh_head)); /* we are its only writer */
	unsigned n;

	for (n = 0; n < max; n++) {
		struct gpuos_task *d = &r->tasks[(head + n) & (GPUOS_RING_SIZE - 1)];
		/* acquire: pairs with the release of seq in gpuos_ring_publish */
		if (load_acquire((_Atomic uint32_t *)&d->seq) != head + n + 1)
			break;
		memcpy(&out[n], d, sizeof(*d));
	}
	/* release: our reads of the descriptors before producers may rewrite them; pairs with
	 * the acquire in gpuos_ring_wait_room */
	if (n)
		store_release(SH(sh_head), head + n);
	return n;
}

void gpuos_ring_consumed(struct gpuos_ring *r, unsigned n)
{
	uint32_t done = load_relaxed(SH(sh_done)) + n; /* we are its only writer */

	/* release: the tasks' effects before sh_done; pairs with gpuos_ring_done */
	store_release(SH(sh_done), done);
	/* the test consumer runs dry after every call: as the worker then does; pairs with
	 * gpuos_ring_done_sys */
	store_release(SH(sh_done_sys), done);
}

bool gpuos_ring_try_exit(struct gpuos_ring *r)
{
	uint32_t head = load_relaxed(SH(sh_head)); /* we are its only writer */

	/* release: nothing to publish but the state */
	store_release(SH(sh_state), GPUOS_WORKER_EXITED);
	/* full fence: EXITED before the sh_tail load; pairs with the fence in gpuos_ring_publish
	 * (after the reservation, before its sh_state load) */
	atomic_thread_fence(memory_order_seq_cst);
	if (load_relaxed(SH(sh_tail)) == head)
		return true;
	store_release(SH(sh_state), GPUOS_WORKER_RUNNING);
	return false;
}
