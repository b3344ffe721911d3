// SPDX-License-Identifier: MIT
/*
 * Per-stream batches: the slot table and the open/close rules of batch.h. One lock for the
 * table; the expensive part of a close or open is the one stream operation it enqueues.
 */
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "common/atomics.h"
#include "common/log.h"
#include "common/probe.h"
#include "fusion/batch.h"

#define NINDEX (2 * GPUOS_MAX_SLOTS)

_Static_assert(offsetof(struct gpuos_batches, calls) + sizeof(((struct gpuos_batches *)0)->calls) ==
		   sizeof(struct gpuos_batches),
	       "nopen and calls[] come last: gpuos_batch_init keeps them");

static __thread pid_t my_tid;

static pid_t self(void)
{
	if (!my_tid)
		my_tid = gettid();
	return my_tid;
}

/* Slot keys: stream handles are 8-aligned pointers; the pseudo streams get odd-looking keys. */
static uintptr_t key_of(uintptr_t stream, bool ptsz, int dev)
{
	if (stream == 0)
		stream = ptsz ? GPUOS_STREAM_PTDS : GPUOS_STREAM_LEGACY;
	if (stream == GPUOS_STREAM_LEGACY)
		return ((uintptr_t)(unsigned)dev << 8) | 0x1;
	if (stream == GPUOS_STREAM_PTDS)
		return ((uintptr_t)(unsigned)self() << 16) | ((uintptr_t)(unsigned)dev << 8) | 0x2;
	return stream;
}

static unsigned hash(uintptr_t key)
{
	uint64_t h = (uint64_t)key * 0x9e3779b97f4a7c15ull;
	return (unsigned)(h >> 40) & (NINDEX - 1);
}

static struct gpuos_slot *find(struct gpuos_batches *b, uintptr_t key)
{
	for (unsigned i = hash(key), n = 0; n < NINDEX; i = (i + 1) & (NINDEX - 1), n++) {
		/* relaxed: a hint outside the lock; the caller checks the key again under the
		 * slot's lock, and under the table lock nothing changes */
		unsigned s = load_relaxed(&b->index[i]);
		if (!s)
			return NULL;
		if (s != 0xffff && load_relaxed(&b->slot[s - 1].key) == key)
			return &b->slot[s - 1];
	}
	return NULL;
}

static struct gpuos_slot *create(struct gpuos_batches *b, uintptr_t key, uintptr_t stream, int dev)
{
	struct gpuos_slot *s = NULL;
	unsigned i, n;
	bool blocking = true;
	int sdev = dev;

	for (i = 0; i < GPUOS_MAX_SLOTS && !s; i++)
		if (!load_relaxed(&b->slot[i].key))
			s = &b->slot[i];
	if (!s)
		return NULL;
	if (stream != GPUOS_STREAM_LEGACY && stream != GPUOS_STREAM_PTDS &&
	    b->ops->describe(b->ctx, stream, &sdev, &blocking))
		return NULL;
	for (i = hash(key), n = 0; n < NINDEX; i = (i + 1) & (NINDEX - 1), n++) {
		unsigned v = load_relaxed(&b->index[i]);
		if (v == 0 || v == 0xffff)
			break;
	}
	/* batch and tseq continue from the slot's previous user: go/done never go back */
	pthread_mutex_lock(&s->lock);
	store_relaxed(&s->key, key);
	s->stream = stream;
	s->dev = sdev;
	s->owner = stream == GPUOS_STREAM_PTDS ? self() : 0;
	s->blocking = blocking;
	s->open = false;
	pthread_mutex_unlock(&s->lock);
	/* the index entry last: a fast-path reader that finds it sees the key */
	store_relaxed(&b->index[i], (uint16_t)(s - b->slot + 1));
	return s;
}

/* Under the table lock: slot @i's batch is open or not. */
static void mark_open(struct gpuos_batches *b, unsigned i, bool open)
{
	if (open)
		b->openmask[i / 64] |= 1ull << (i % 64);
	else
		b->openmask[i / 64] &= ~(1ull << (i % 64));
}

/* The ring slot @s's tasks go to (its device has rings: it has or had tasks). */
static struct gpuos_ring *ring_of(struct gpuos_batches *b, const struct gpuos_slot *s)
{
	unsigned i = (unsigned)(s - b->slot);

	/* acquire: pairs with the release of nrings at engine start (rings[] set) */
	return &b->rings[s->dev][i % load_acquire(&b->nrings[s->dev])];
}

/* Under the table lock. */
static void close_slot(struct gpuos_batches *b, struct gpuos_slot *s)
{
	uintptr_t on = s->stream;
	uint32_t tseq, pos;
	unsigned ntasks;
	int rc;

	if (!s->open)
		return;
	pthread_mutex_lock(&s->lock);
	tseq = s->tseq;
	pos = s->pos;
	ntasks = s->ntasks;
	s->open = false;
	s->ntasks = 0;
	pthread_mutex_unlock(&s->lock);
	mark_open(b, (unsigned)(s - b->slot), false);
	/* acquire: pairs with the release in gpuos_batch_ready. Submitters that reserved are
	 * publishing and starting workers, a few microseconds, outside our locks. */
	for (unsigned spins = 0; (int32_t)(tseq - load_acquire(&s->ready)) > 0; spins++)
		if (spins > 64)
			sched_yield();
	/* Every task of the batch has run (sh_done_sys, released by the worker after their
	 * writes when it ran out of tasks): later work needs no wait. In a host-bound program this
	 * is the common case (most closes come microseconds after the last submit), and it saves
	 * the wait's stream operation, about half a launch. */
	if (gpuos_ring_passed(gpuos_ring_done_sys(ring_of(b, s)), pos + 1)) {
		b->nelided++;
		goto closed;
	}
	/* Another thread's per-thread stream cannot be named here: a wait on the legacy
	 * stream orders its later work too (both blocking). */
	if (on == GPUOS_STREAM_PTDS && s->owner != self())
		on = GPUOS_STREAM_LEGACY;
	rc = b->ops->wait(b->ctx, s->dev, on, (unsigned)(s - b->slot), tseq);
	if (rc)
		gpuos_err("closing a batch of %u tasks failed (%d): later work on its stream may "
			  "not wait for it",
			  ntasks, rc);
closed:
	b->nclosed++;
	fetch_add_relaxed(&b->nopen, -1);
}

/* Under the table lock: close every open batch, or with @dev >= 0 those of device @dev's
 * blocking streams; never @keep. */
static void close_open(struct gpuos_batches *b, int dev, const struct gpuos_slot *keep)
{
	for (unsigned w = 0; w < GPUOS_MAX_SLOTS / 64; w++)
		for (uint64_t m = b->openmask[w]; m; m &= m - 1) {
			struct gpuos_slot *s = &b->slot[w * 64 + __builtin_ctzll(m)];
			if (s != keep && (dev < 0 || (s->dev == dev && s->blocking)))
				close_slot(b, s);
		}
}

/* Close what an operation on @key (a slot or none yet) requires, except @keep. */
static void apply_rules(struct gpuos_batches *b, uintptr_t stream, int dev, bool blocking,
			struct gpuos_slot *keep)
{
	if (!load_relaxed(&b->nopen))
		return;
	if (stream == GPUOS_STREAM_LEGACY) {
		close_open(b, dev, keep);
	} else if (blocking) {
		struct gpuos_slot *l = find(b, key_of(GPUOS_STREAM_LEGACY, false, dev));
		if (l && l != keep)
			close_slot(b, l);
	}
}

void gpuos_batch_init(struct gpuos_batches *b, const struct gpuos_batch_ops *ops, void *ctx)
{
	/* all but nopen and calls[]: driver calls read them without a lock, before any engine,
	 * and calls in flight when an engine starts were counted and will end */
	memset(b, 0, offsetof(struct gpuos_batches, nopen));
	pthread_mutex_init(&b->lock, NULL);
	for (unsigned i = 0; i < GPUOS_MAX_SLOTS; i++)
		pthread_mutex_init(&b->slot[i].lock, NULL);
	b->ops = ops;
	b->ctx = ctx;
}

static uintptr_t normal(uintptr_t stream, bool ptsz)
{
	if (stream == 0)
		return ptsz ? GPUOS_STREAM_PTDS : GPUOS_STREAM_LEGACY;
	return stream;
}

/* ---- driver calls in flight ---- */

unsigned gpuos_batch_call_bucket(uintptr_t stream, bool ptsz, int dev)
{
	stream = normal(stream, ptsz);
	if (stream == GPUOS_STREAM_LEGACY)
		return dev < 0 ? 0 : 1 + (unsigned)dev % GPUOS_CALL_LEGACY;
	if (stream == GPUOS_STREAM_PTDS)
		stream = ((uintptr_t)(unsigned)self() << 16) | 0x2;
	return 1 + GPUOS_CALL_LEGACY +
	       (unsigned)(((uint64_t)stream * 0x9e3779b97f4a7c15ull) >> 32) %
		   (GPUOS_CALL_BUCKETS - 1 - GPUOS_CALL_LEGACY);
}

bool gpuos_batch_call_begin(struct gpuos_batches *b, unsigned bucket)
{
	/* seq_cst count, then seq_cst look: pairs with the open's seq_cst announce-then-look
	 * (opening_refused). Either this call sees the batch being opened (and closes it under
	 * the table lock, after the opener's go), or the opener sees this call and gives up. */
	atomic_fetch_add(&b->calls[bucket], 1);
	return atomic_load(&b->nopen) != 0;
}

void gpuos_batch_call_end(struct gpuos_batches *b, unsigned bucket)
{
	/* release: the call has put its work on the stream; an opener that reads the count
	 * (seq_cst, so acquire) down enqueues its go after that work */
	atomic_fetch_sub_explicit(&b->calls[bucket], 1, memory_order_release);
}

static bool calls_in(struct gpuos_batches *b, unsigned bucket)
{
	/* seq_cst: the opener's look, after its announce (opening_refused) */
	return atomic_load(&b->calls[bucket]) != 0;
}

/* Under the table lock, before opening a batch on @s (normalised) of device @dev. Announces
 * the batch in nopen, then looks for driver calls in flight on @s or a stream @s orders with:
 * the legacy stream of @dev's context (or of an unknown one) if @s is blocking; any stream of
 * @dev (any other stream's bucket) if it is the legacy stream. If there is one, takes the
 * announcement back and says so. */
static bool opening_refused(struct gpuos_batches *b, uintptr_t s, int dev, bool blocking)
{
	unsigned legacy = 1 + (unsigned)dev % GPUOS_CALL_LEGACY;
	bool busy;

	/* seq_cst announce, then seq_cst looks: pairs with gpuos_batch_call_begin */
	atomic_fetch_add(&b->nopen, 1);
	busy = (blocking || s == GPUOS_STREAM_LEGACY) && (calls_in(b, 0) || calls_in(b, legacy));
	if (s == GPUOS_STREAM_LEGACY) { /* any stream in a call may be a blocking one */
		for (unsigned i = 1 + GPUOS_CALL_LEGACY; i < GPUOS_CALL_BUCKETS && !busy; i++)
			busy = calls_in(b, i);
	} else if (!busy) {
		busy = calls_in(b, gpuos_batch_call_bucket(s, false, dev));
	}
	if (busy) {
		fetch_add_relaxed(&b->nopen, -1);
		b->nrefused++;
	}
	return busy;
}

int gpuos_batch_submit(struct gpuos_batches *b, uintptr_t stream, bool ptsz, int *dev,
		       struct gpuos_task *t, struct gpuos_ring **ring, uint32_t *pos)
{
	uintptr_t key = key_of(stream, ptsz, *dev);
	struct gpuos_slot *s;
	int rc = 0;

	stream = normal(stream, ptsz);
	/* Fast path: the stream's batch is open: only the slot lock. */
	s = find(b, key);
	if (s) {
		pthread_mutex_lock(&s->lock);
		/* relaxed under the slot lock: gpuos_batch_park_begin sets the flag, then takes
		 * every slot lock; past it we see the flag, before it we reserved in time */
		if (load_relaxed(&b->parking)) {
			pthread_mutex_unlock(&s->lock);
			return load_relaxed(&b->capture) ? -EBUSY : -EAGAIN;
		}
		if (s->open && load_relaxed(&s->key) == key) {
			*dev = s->dev;
			if (t->op >= GPUOS_BUILTIN_OPS) {
				/* an alias switch under way: the slow path waits for it. Else,
				 * under the slot lock, the slot resolved is the one in force
				 * when the position below is reserved (gpuos_batch_freeze) */
				if (load_relaxed(&b->frozen))
					goto slow;
				if ((rc = b->ops->resolve(b->ctx, t->op, s->dev)) < 0) {
					pthread_mutex_unlock(&s->lock);
					return rc;
				}
				t->op = (uint16_t)rc;
			}
			t->gate = 0;
			t->slot = (uint16_t)(s - b->slot);
			t->tseq = ++s->tseq;
			s->ntasks++;
			*ring = ring_of(b, s);
			/* under the slot lock: the stream's tasks take positions in tseq order */
			*pos = s->pos = gpuos_ring_reserve(*ring);
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
slow:
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_lock(&b->lock);
	if (load_relaxed(&b->capture)) {
		rc = -EBUSY;
		goto out;
	}
	if (load_relaxed(&b->parking)) { /* set under this lock */
		rc = -EAGAIN;
		goto out;
	}
	s = find(b, key);
	if (!s && !(s = create(b, key, stream, *dev))) {
		rc = -ENOSPC;
		goto out;
	}
	*dev = s->dev;
	/* relaxed: a check; ring_of's acquire below reads rings[] */
	if (s->dev < 0 || s->dev >= 16 || !load_relaxed(&b->nrings[s->dev])) {
		rc = -ENODEV;
		goto out;
	}
	if (t->op >= GPUOS_BUILTIN_OPS) {
		/* under the lock: an alias switch (kernels/table.h) snapshots the tails under it
		 * with the fast path fenced off (gpuos_batch_freeze), so a task reserved after
		 * the snapshot names the new slot */
		rc = b->ops->resolve(b->ctx, t->op, s->dev);
		if (rc < 0)
			goto out;
		t->op = (uint16_t)rc;
		rc = 0;
	}
	if (!s->open && opening_refused(b, stream, s->dev, s->blocking)) {
		rc = -EINPROGRESS;
		goto out;
	}
	apply_rules(b, stream, s->dev, s->blocking, s);
	if (!s->open) {
		uint32_t nb = s->batch + 1 ? s->batch + 1 : 1; /* 0 means "no gate" */

		rc = b->ops->go(b->ctx, s->dev, stream, (unsigned)(s - b->slot), nb);
		if (rc) {
			fetch_add_relaxed(&b->nopen, -1); /* announced by opening_refused */
			goto out;
		}
		s->batch = nb;
		pthread_mutex_lock(&s->lock);
		s->open = true;
		pthread_mutex_unlock(&s->lock);
		mark_open(b, (unsigned)(s - b->slot), true);
		b->nopened++;
		t->gate = nb;
	} else {
		t->gate = 0;
	}
	pthread_mutex_lock(&s->lock);
	t->slot = (uint16_t)(s - b->slot);
	t->tseq = ++s->tseq;
	s->ntasks++;
	*ring = ring_of(b, s);
	/* reserved under the lock: a stream's tasks take ring positions in tseq order */
	*pos = s->pos = gpuos_ring_reserve(*ring);
	pthread_mutex_unlock(&s->lock);
out:
	pthread_mutex_unlock(&b->lock);
	return rc;
}

void gpuos_batch_ready(struct gpuos_batches *b, const struct gpuos_task *t)
{
	/* release: the publication and the worker's launch before the count; pairs with the
	 * acquire in close_slot */
	atomic_fetch_add_explicit(&b->slot[t->slot].ready, 1, memory_order_release);
}

void gpuos_batch_stream_op(struct gpuos_batches *b, uintptr_t stream, bool ptsz, int dev)
{
	struct gpuos_slot *s;
	bool blocking = true;

	if (!gpuos_batch_any_open(b))
		return;
	pthread_mutex_lock(&b->lock);
	s = find(b, key_of(stream, ptsz, dev));
	stream = normal(stream, ptsz);
	if (s) {
		close_slot(b, s);
		blocking = s->blocking;
		dev = s->dev;
	} else if (stream != GPUOS_STREAM_LEGACY && stream != GPUOS_STREAM_PTDS) {
		/* a stream without tasks: only its legacy relation matters; unknown = blocking */
		b->ops->describe(b->ctx, stream, &dev, &blocking);
	}
	apply_rules(b, stream, dev, blocking, NULL);
	pthread_mutex_unlock(&b->lock);
}

void gpuos_batch_close_all(struct gpuos_batches *b)
{
	pthread_mutex_lock(&b->lock);
	close_open(b, -1, NULL);
	pthread_mutex_unlock(&b->lock);
}

void gpuos_batch_forget(struct gpuos_batches *b, uintptr_t stream)
{
	struct gpuos_slot *s;

	pthread_mutex_lock(&b->lock);
	s = find(b, stream);
	if (s) {
		close_slot(b, s);
		for (unsigned i = 0; i < NINDEX; i++)
			if (load_relaxed(&b->index[i]) == (uint16_t)(s - b->slot + 1))
				store_relaxed(&b->index[i], 0xffff); /* tombstone: probes go on */
		pthread_mutex_lock(&s->lock);
		store_relaxed(&s->key, 0);
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&b->lock);
}

/*
 * Under the table lock, after setting a flag the fast path reads under its slot lock: a
 * submit that missed it holds that lock until it has its position; wait for those under way
 * (after this, each sees the flag).
 */
static void wait_fast_submits(struct gpuos_batches *b)
{
	for (unsigned i = 0; i < GPUOS_MAX_SLOTS; i++) {
		pthread_mutex_lock(&b->slot[i].lock);
		pthread_mutex_unlock(&b->slot[i].lock);
	}
}

void gpuos_batch_freeze(struct gpuos_batches *b)
{
	pthread_mutex_lock(&b->lock);
	store_relaxed(&b->frozen, 1);
	wait_fast_submits(b);
}

void gpuos_batch_thaw(struct gpuos_batches *b)
{
	store_relaxed(&b->frozen, 0);
	pthread_mutex_unlock(&b->lock);
}

void gpuos_batch_park_begin(struct gpuos_batches *b)
{
	pthread_mutex_lock(&b->lock);
	fetch_add_relaxed(&b->parking, 1);
	wait_fast_submits(b);
	pthread_mutex_unlock(&b->lock);
}

/* One park or capture less (under the lock, like the checks of it). */
static void count_down(struct gpuos_batches *b, _Atomic int *n)
{
	pthread_mutex_lock(&b->lock);
	if (load_relaxed(n) > 0)
		fetch_add_relaxed(n, -1);
	pthread_mutex_unlock(&b->lock);
}

void gpuos_batch_park_end(struct gpuos_batches *b)
{
	count_down(b, &b->parking);
}

void gpuos_batch_capture_begin(struct gpuos_batches *b)
{
	pthread_mutex_lock(&b->lock);
	fetch_add_relaxed(&b->capture, 1);
	close_open(b, -1, NULL);
	pthread_mutex_unlock(&b->lock);
}

void gpuos_batch_capture_end(struct gpuos_batches *b)
{
	count_down(b, &b->capture);
}

void gpuos_batch_drop_device(struct gpuos_batches *b, int dev)
{
	pthread_mutex_lock(&b->lock);
	for (unsigned i = 0; i < GPUOS_MAX_SLOTS; i++) {
		struct gpuos_slot *s = &b->slot[i];
		if (!load_relaxed(&s->key) || s->dev != dev)
			continue;
		pthread_mutex_lock(&s->lock);
		if (s->open)
			fetch_add_relaxed(&b->nopen, -1);
		s->open = false;
		s->ntasks = 0;
		mark_open(b, i, false);
		store_relaxed(&s->key, 0);
		pthread_mutex_unlock(&s->lock);
		for (unsigned k = 0; k < NINDEX; k++)
			if (load_relaxed(&b->index[k]) == (uint16_t)(i + 1))
				store_relaxed(&b->index[k], 0xffff);
	}
	/* After the slots: a fast-path submit that found its batch open before we took its
	 * lock still reads the rings (ring_of divides by their count); later ones find it
	 * closed and take the slow path, which sees no rings (-ENODEV). */
	if (dev >= 0 && dev < 16)
		store_release(&b->nrings[dev], 0);
	pthread_mutex_unlock(&b->lock);
}
