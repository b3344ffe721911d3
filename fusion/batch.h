/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_FUSION_BATCH_H
#define GPUOS_FUSION_BATCH_H

/*
 * Per-stream batches: how diverted tasks keep their place in stream order.
 *
 * A stream slot has an open batch from its first task until anything else touches the stream.
 * At open, one "go" write goes on the stream (go[slot] = batch number, after the stream's
 * earlier work); the batch's first task is gated on it. At close, one "done" wait goes on the
 * stream (done[slot] >= last task), so later work waits for the batch; unless the batch's
 * tasks have all run by then (the ring's done count passed its last task), the usual case
 * when the host is the bottleneck. At most two stream operations per batch, never per task.
 *
 * Rules (DESIGN.md invariant 3):
 *   - any stream-ordered operation on S closes S's batch;
 *   - on the legacy default stream it closes every blocking stream's batch of that device, and
 *     the legacy one; on a blocking stream it also closes the legacy stream's batch;
 *   - a task on the legacy stream closes the blocking streams' batches (their done waits come
 *     before its go), a task on a blocking stream closes the legacy batch, then joins or
 *     opens its own;
 *   - per-thread default streams are blocking; their batch is opened by their thread; another
 *     thread closes it with a wait on the legacy stream (which orders the per-thread stream's
 *     later work as well, both being blocking);
 *   - while a driver call on S is in flight (gpuos_batch_call_begin to _end) no batch opens on
 *     S, nor on a stream S orders with: the call closed S's batches when it entered, and a
 *     batch opened before its work is enqueued would have its go before that work, yet the
 *     caller's next task on S would join it. Another thread sharing S gets -EINPROGRESS
 *     (its launch falls through and the driver orders it). A legacy stream is its context's:
 *     a call on device d's holds back no other device's batches, when the call's context is
 *     known to be d's primary one (else it holds back every device's).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fusion/ring.h"

/* Stream names: CUstream values, and two pseudo handles (CUDA's own values). */
#define GPUOS_STREAM_LEGACY ((uintptr_t)0x1)
#define GPUOS_STREAM_PTDS   ((uintptr_t)0x2)

/*
 * Locks: the table lock (b->lock) for slot creation, rules and opening or closing a batch;
 * a slot's own lock for its counters. Order: table lock, then slot locks. A task that joins
 * its stream's open batch takes only the slot lock: while a blocking stream's batch is open
 * the legacy batch of its device is closed (opening either closes the other), so no rule
 * applies to it.
 */

/* What batch.c needs from the GPU side (engine.c; fakes in the unit tests). */
struct gpuos_batch_ops {
	/* @stream's device and whether it synchronises with the legacy stream. */
	int (*describe)(void *ctx, uintptr_t stream, int *dev, bool *blocking);
	/* Injected logical operator @op (>= GPUOS_BUILTIN_OPS) to the op field tasks carry now,
	 * -EAGAIN if it has no live code, -EXDEV if its code is on another device than @dev.
	 * Called under the lock. */
	int (*resolve)(void *ctx, unsigned op, int dev);
	/* Enqueue on @stream (a handle or GPUOS_STREAM_LEGACY/PTDS of device @dev). */
	int (*go)(void *ctx, int dev, uintptr_t stream, unsigned slot, uint32_t batch);
	int (*wait)(void *ctx, int dev, uintptr_t stream, unsigned slot, uint32_t tseq);
};

/* Driver calls in flight are counted by bucket: 0 the legacy stream of a context not known to
 * be a device's primary one; 1..GPUOS_CALL_LEGACY the legacy stream of device d's primary
 * context (1 + d % GPUOS_CALL_LEGACY); the rest a hash of the stream (a per-thread stream's
 * of its thread). A shared bucket only makes an open fall through. */
#define GPUOS_CALL_BUCKETS 64
#define GPUOS_CALL_LEGACY  8

struct gpuos_slot {
	pthread_mutex_t lock;  /* tseq, ntasks, open; taken alone by a submit that joins an open
				* batch; anything else holds the table lock first */
	_Atomic uintptr_t key; /* 0 = free; a stream handle, or a legacy/per-thread key */
	uintptr_t stream;      /* what memops name: the handle, LEGACY or PTDS */
	int dev;
	pid_t owner; /* per-thread stream: its thread */
	bool open, blocking;
	uint32_t batch;	 /* last batch number handed out (go value) */
	uint32_t tseq;	 /* last task number handed out */
	_Atomic uint32_t ready; /* tasks published and their worker started (gpuos_batch_ready) */
	unsigned ntasks; /* in the open batch */
	uint32_t pos;	 /* ring position of the last task */
};

struct gpuos_batches {
	pthread_mutex_t lock;
	_Atomic int capture; /* captures in progress: no task is accepted */
	_Atomic int parking; /* parks in progress: no task is accepted (-EAGAIN) */
	_Atomic int frozen;  /* an alias switch: injected operators take the slow path */
	const struct gpuos_batch_ops *ops;
	void *ctx;
	/* a slot of device d uses rings[d][s % nrings[d]]; set once when d's engine starts,
	 * rings before nrings (release), read after nrings (acquire) */
	struct gpuos_ring *rings[16];
	_Atomic unsigned nrings[16];
	struct gpuos_slot slot[GPUOS_MAX_SLOTS];
	/* open addressing: slot + 1, 0 empty, 0xffff deleted; written under the lock, read
	 * without it by the submit fast path (which checks the slot's key under its lock) */
	_Atomic uint16_t index[2 * GPUOS_MAX_SLOTS];
	/* bit i: slot i's batch is open; under the lock. The legacy stream's rules close every
	 * open batch of a device: walking these beats reading all slots (a few cache lines, not
	 * the 100 KB of every slot, on each legacy-stream submit and stream op) */
	uint64_t openmask[GPUOS_MAX_SLOTS / 64];
	uint64_t nopened, nclosed, nelided; /* statistics; elided: closes without a wait */
	uint64_t nrefused; /* opens refused for a driver call in flight (under the lock) */
	/* Last, never reset by gpuos_batch_init: driver calls read them before any engine. */
	_Atomic int nopen; /* open batches (and one being opened): stream_op is a no-op at 0 */
	/* stream-ordered driver calls in flight, by bucket (GPUOS_CALL_BUCKETS) */
	_Alignas(64) _Atomic uint32_t calls[GPUOS_CALL_BUCKETS];
};

void gpuos_batch_init(struct gpuos_batches *b, const struct gpuos_batch_ops *ops, void *ctx);

/*
 * Put @t (op and args set) in @stream's batch on device @dev: apply the rules, open a batch if
 * needed, number the task and reserve its ring position (-ENODEV if @dev has no rings), in stream
 * order. @ptsz: a NULL stream means the per-thread default stream. @dev: the current device in, the
 * slot's out. On success *ring and *pos say where to publish it (gpuos_ring_wait_room,
 * gpuos_ring_publish); the caller must publish it. -EBUSY while a capture is in progress, -EAGAIN
 * while a park is, -EINPROGRESS if the task would open a batch while another thread's driver
 * call on the stream (or one it orders with) is in flight, -ENOSPC without a free slot, or
 * the ops' error.
 */
int gpuos_batch_submit(struct gpuos_batches *b, uintptr_t stream, bool ptsz, int *dev,
		       struct gpuos_task *t, struct gpuos_ring **ring, uint32_t *pos);

/*
 * Task @t (from gpuos_batch_submit) is published and a worker runs for it (or one was seen
 * running after the publication). A batch close waits for this from every task it covers:
 * a stream must never wait on a task whose worker a host thread has yet to launch, since
 * the launch may queue in the driver behind a synchronous call of another thread that waits
 * for that very stream.
 */
void gpuos_batch_ready(struct gpuos_batches *b, const struct gpuos_task *t);

/*
 * The bucket a driver call on @stream counts in, on the calling thread. @dev: for the legacy
 * stream (NULL without @ptsz, or CU_STREAM_LEGACY), the device whose primary context is the
 * call's, -1 if that is not known; ignored for other streams.
 */
unsigned gpuos_batch_call_bucket(uintptr_t stream, bool ptsz, int dev);

/*
 * A stream-ordered driver call enters, counted in @bucket (gpuos_batch_call_bucket): it is in
 * flight until gpuos_batch_call_end with the same bucket, and no batch opens on its stream or
 * a stream it orders with meanwhile. Returns whether a batch may be open: then the caller
 * closes what the call requires (gpuos_batch_stream_op), as it would have without counting.
 */
bool gpuos_batch_call_begin(struct gpuos_batches *b, unsigned bucket);
void gpuos_batch_call_end(struct gpuos_batches *b, unsigned bucket);

/* Before a stream-ordered operation on @stream (see the rules). @dev: the current device. */
void gpuos_batch_stream_op(struct gpuos_batches *b, uintptr_t stream, bool ptsz, int dev);

/* Close every open batch (park, capture begin). */
void gpuos_batch_close_all(struct gpuos_batches *b);

/* Forget @stream (destroyed; its batch closed before). */
void gpuos_batch_forget(struct gpuos_batches *b, uintptr_t stream);

/* Device @dev was reset: forget its slots without closing (their streams are gone) and its
 * rings (submits for it say -ENODEV until a new engine attaches). */
void gpuos_batch_drop_device(struct gpuos_batches *b, int dev);

/*
 * Freeze: the table lock, and every submit of an injected operator that resolved its slot on
 * the fast path has its position; until thaw the others wait for the lock. An operator's
 * alias switch (kernels/ops.c) snapshots the rings' tails and switches the slot in between:
 * each task then names the slot in force at its position.
 */
void gpuos_batch_freeze(struct gpuos_batches *b);
void gpuos_batch_thaw(struct gpuos_batches *b);

/*
 * Parks: while any is in progress submit says -EAGAIN. When begin returns, every submit that
 * did not see the flag has its ring position (so a drain that starts now covers it), and no
 * submit takes one until end: no worker starts during the call parked for.
 */
void gpuos_batch_park_begin(struct gpuos_batches *b);
void gpuos_batch_park_end(struct gpuos_batches *b);

/* Captures: while any is in progress submit says -EBUSY. begin closes every batch. */
void gpuos_batch_capture_begin(struct gpuos_batches *b);
void gpuos_batch_capture_end(struct gpuos_batches *b);

static inline bool gpuos_batch_any_open(struct gpuos_batches *b)
{
	/* relaxed: a hint for callers outside a driver call (gpuos_flush). A driver call's own
	 * check is gpuos_batch_call_begin's, ordered after its count */
	return atomic_load_explicit(&b->nopen, memory_order_relaxed) != 0;
}

#endif
