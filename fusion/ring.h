/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_FUSION_RING_H
#define GPUOS_FUSION_RING_H

/*
 * The task ring: GPUOS_RING_SIZE descriptors in pinned host memory, many producer threads, one
 * consumer (the ring's worker block, or a host thread in tests). liburing's rules: free-running
 * unsigned positions, pos & mask, full when pos - head == size; each field has one writer.
 *
 * Producers reserve a position (fetch-add on sh_tail), wait while the ring is full
 * (back-pressure, never loss), fill the descriptor and release-store its seq = pos + 1. The
 * consumer takes the contiguous run of valid descriptors at its head, copies them out and
 * release-stores sh_head; when they have run it stores sh_done. It leaves only with no
 * position handed out past its head (sh_tail == head), see gpuos_ring_try_exit.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernels/task.h"

struct gpuos_ring {
	struct gpuos_task *tasks;	     /* GPUOS_RING_SIZE, shared with the consumer */
	struct gpuos_ring_sh *sh;	     /* shared fields */
	_Alignas(128) _Atomic uint32_t head; /* host only: a recent sh_head (never ahead of it) */
	_Alignas(128) char pad;
};

/* @tasks and @sh zeroed by the caller (pinned memory, or plain memory in tests). */
void gpuos_ring_init(struct gpuos_ring *r, struct gpuos_task *tasks, struct gpuos_ring_sh *sh);

/*
 * Hand out the next position. Lock-free; positions come out in call order, so a caller that
 * needs tasks of one stream in order reserves under its own lock.
 */
static inline uint32_t gpuos_ring_reserve(struct gpuos_ring *r)
{
	/* relaxed: the full fence in gpuos_ring_publish orders it before the sh_state load;
	 * pairs with the fence in the worker's try_exit (it stores EXITED, then reads this) */
	return atomic_fetch_add_explicit((_Atomic uint32_t *)&r->sh->sh_tail, 1,
					 memory_order_relaxed);
}

/* The next position to hand out: every position before it is reserved (relaxed). */
static inline uint32_t gpuos_ring_tail(const struct gpuos_ring *r)
{
	return atomic_load_explicit((_Atomic uint32_t *)&r->sh->sh_tail, memory_order_relaxed);
}

/*
 * Wait until @pos has a free descriptor: pos - sh_head < size. Calls @kick(ctx) now and then
 * while waiting (the caller makes sure a consumer runs); a kick that returns true says no
 * consumer ever will (its engine died): the wait ends without room, and what the caller then
 * publishes nobody reads. Returns 0 when the cached head showed room, else 1 + the number of
 * spins on sh_head.
 */
unsigned gpuos_ring_wait_room(struct gpuos_ring *r, uint32_t pos, bool (*kick)(void *),
			      void *ctx);

/*
 * Fill descriptor @pos from @t (its seq is ignored) and publish it. Returns true unless a
 * consumer was seen running after the publication (sh_state read RUNNING, with a full fence
 * in between): the caller must then start one, or wait until another thread's start
 * (STARTING) has launched it. Until then no stream may wait for the task.
 */
bool gpuos_ring_publish(struct gpuos_ring *r, uint32_t pos, const struct gpuos_task *t);

/* Positions whose tasks have finished (sh_done), acquire. */
uint32_t gpuos_ring_done(const struct gpuos_ring *r);

/* Positions whose tasks have finished and whose writes the caller sees (sh_done_sys, which
 * the consumer stores with a system-scope release when it runs dry; may lag sh_done). */
uint32_t gpuos_ring_done_sys(const struct gpuos_ring *r);

/* True once every task at a position before @pos has finished (wrap-safe). */
static inline bool gpuos_ring_passed(uint32_t done, uint32_t pos)
{
	return (int32_t)(done - pos) >= 0;
}

/*
 * A host consumer with the worker's protocol, for tests: copy up to @max valid descriptors at
 * the head into @out, release sh_head; the caller runs them and calls gpuos_ring_consumed.
 */
unsigned gpuos_ring_fetch(struct gpuos_ring *r, struct gpuos_task *out, unsigned max);
void gpuos_ring_consumed(struct gpuos_ring *r, unsigned n);

/*
 * The consumer's leaving, as the worker does it (kernels/worker.cu try_exit), once it found
 * nothing to fetch: store EXITED, full fence, then leave only if no position was handed out
 * past its head; else store RUNNING back and return false (go on fetching).
 */
bool gpuos_ring_try_exit(struct gpuos_ring *r);

#endif
