// SPDX-License-Identifier: MIT
/*
 * fusion without a GPU: the ring protocol with host threads standing in for the worker
 * (wrap-around, full ring, many producers), and the batch open/close rules against fake stream
 * operations that log what would be enqueued where.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/atomics.h"
#include "fusion/batch.h"
#include "fusion/ring.h"

/* ---- ring ---- */

struct rig {
	struct gpuos_task *tasks;
	struct gpuos_ring_sh *sh;
	struct gpuos_ring ring;
};

static void rig_init(struct rig *g, uint32_t start)
{
	g->tasks = calloc(GPUOS_RING_SIZE, sizeof(*g->tasks));
	g->sh = calloc(1, sizeof(*g->sh));
	g->sh->sh_head = g->sh->sh_done = start;
	gpuos_ring_init(&g->ring, g->tasks, g->sh);
}

static void rig_free(struct rig *g)
{
	free(g->tasks);
	free(g->sh);
}

/* One producer pushes a..b; the consumer must see exactly that sequence. */
START_TEST(ring_single_fifo_wraps)
{
	struct rig g;
	struct gpuos_task out[GPUOS_FETCH], t = {0};
	uint64_t next = 0;

	/* start just below 2^32 so positions and seq wrap during the test */
	rig_init(&g, 0xffffffffu - 3 * GPUOS_RING_SIZE);
	for (uint64_t i = 0; i < 10 * GPUOS_RING_SIZE; i++) {
		uint32_t pos = gpuos_ring_reserve(&g.ring);
		ck_assert_uint_le(gpuos_ring_wait_room(&g.ring, pos, NULL, NULL), 1);
		t.a[0] = i;
		gpuos_ring_publish(&g.ring, pos, &t);
		if (i % 7 == 6) {
			unsigned n;
			while ((n = gpuos_ring_fetch(&g.ring, out, GPUOS_FETCH)) > 0) {
				for (unsigned k = 0; k < n; k++)
					ck_assert_uint_eq(out[k].a[0], next++);
				gpuos_ring_consumed(&g.ring, n);
			}
		}
	}
	ck_assert_uint_eq(next, 10 * GPUOS_RING_SIZE - (10 * GPUOS_RING_SIZE) % 7);
	rig_free(&g);
}
END_TEST

/* A reserved but unpublished descriptor stops the consumer there (contiguous prefix only). */
START_TEST(ring_gap_stops_fetch)
{
	struct rig g;
	struct gpuos_task out[GPUOS_FETCH], t = {0};
	uint32_t p0, p1, p2;

	rig_init(&g, 0);
	p0 = gpuos_ring_reserve(&g.ring);
	p1 = gpuos_ring_reserve(&g.ring);
	p2 = gpuos_ring_reserve(&g.ring);
	gpuos_ring_publish(&g.ring, p0, &t);
	gpuos_ring_publish(&g.ring, p2, &t);
	ck_assert_uint_eq(gpuos_ring_fetch(&g.ring, out, GPUOS_FETCH), 1);
	ck_assert_uint_eq(gpuos_ring_fetch(&g.ring, out, GPUOS_FETCH), 0);
	gpuos_ring_publish(&g.ring, p1, &t);
	ck_assert_uint_eq(gpuos_ring_fetch(&g.ring, out, GPUOS_FETCH), 2);
	rig_free(&g);
}
END_TEST

/*
 * The consumer's leaving (gpuos_ring_try_exit, the worker's try_exit): not while a position
 * handed out past its head is still being written. Here p1's producer saw RUNNING, so its
 * stream may already wait for p1; had the consumer left, p1 would wait for p0's producer to
 * launch a worker, a launch a synchronous copy waiting on p1's stream can hold up.
 */
START_TEST(ring_exit_waits_for_reserved)
{
	struct rig g;
	struct gpuos_task out[GPUOS_FETCH], t = {0};
	uint32_t p0, p1, p2;

	rig_init(&g, 7);
	g.sh->sh_state = GPUOS_WORKER_RUNNING;
	ck_assert(gpuos_ring_try_exit(&g.ring)); /* nothing handed out: it may leave */
	ck_assert_uint_eq(g.sh->sh_state, GPUOS_WORKER_EXITED);
	g.sh->sh_state = GPUOS_WORKER_RUNNING;
	p0 = gpuos_ring_reserve(&g.ring);
	p1 = gpuos_ring_reserve(&g.ring);
	ck_assert(!gpuos_ring_publish(&g.ring, p1, &t)); /* saw RUNNING: ready at once */
	ck_assert_uint_eq(gpuos_ring_fetch(&g.ring, out, GPUOS_FETCH), 0); /* p0 not written */
	ck_assert(!gpuos_ring_try_exit(&g.ring));
	ck_assert_uint_eq(g.sh->sh_state, GPUOS_WORKER_RUNNING);
	ck_assert(!gpuos_ring_publish(&g.ring, p0, &t));
	ck_assert_uint_eq(gpuos_ring_fetch(&g.ring, out, GPUOS_FETCH), 2);
	gpuos_ring_consumed(&g.ring, 2);
	ck_assert(gpuos_ring_try_exit(&g.ring));
	/* reserved after it left: its producer sees EXITED and starts a worker */
	p2 = gpuos_ring_reserve(&g.ring);
	ck_assert(gpuos_ring_publish(&g.ring, p2, &t));
	rig_free(&g);
}
END_TEST

/*
 * The handshake under load: producers (some slow between reserve and publish) and a consumer
 * that tries to leave whenever it runs dry. When it has left, every task whose producer saw
 * RUNNING (and so would not start a worker) was fetched; a producer that saw the consumer gone
 * restarts it, as gpuos_engine_start_worker does. Every EXIT_PHASE tasks the producers wait
 * for one more exit: with four producers always at work the consumer may never find the ring
 * dry (under TSan it did not, once), and the test must see it leave.
 */
#define EXIT_PRODUCERS 4
#define EXIT_PER       20000
#define EXIT_PHASE     5000
static struct rig xr;
static _Atomic uint8_t xready[EXIT_PRODUCERS * EXIT_PER];
static _Atomic int xstart, xleft;
static _Atomic uint32_t xexits;

static void *exit_producer(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	struct gpuos_task t = {0};

	for (unsigned i = 0; i < EXIT_PER; i++) {
		/* acquire: pairs with the consumer's release after it left */
		while (i && i % EXIT_PHASE == 0 && load_acquire(&xexits) < i / EXIT_PHASE)
			sched_yield();
		uint32_t pos = gpuos_ring_reserve(&xr.ring);

		gpuos_ring_wait_room(&xr.ring, pos, NULL, NULL);
		seed = seed * 1103515245u + 12345u;
		for (unsigned k = 0; k < ((seed >> 16) % 64 == 0 ? 200u : 0u); k++)
			sched_yield(); /* a producer held up between its reserve and its publish */
		if (gpuos_ring_publish(&xr.ring, pos, &t))
			store_release(&xstart, 1);
		else
			store_relaxed(&xready[pos], 1);
	}
	/* release: the publications and the start flag before it; pairs with the consumer */
	atomic_fetch_add_explicit(&xleft, -1, memory_order_release);
	return NULL;
}

START_TEST(ring_exit_never_strands)
{
	pthread_t th[EXIT_PRODUCERS];
	struct gpuos_task out[GPUOS_FETCH];
	uint32_t total = 0, exits = 0;

	rig_init(&xr, 0);
	xexits = 0;
	xr.sh->sh_state = GPUOS_WORKER_RUNNING;
	xleft = EXIT_PRODUCERS;
	for (uintptr_t i = 0; i < EXIT_PRODUCERS; i++)
		pthread_create(&th[i], NULL, exit_producer, (void *)(i + 1));
	while (total < EXIT_PRODUCERS * EXIT_PER) {
		unsigned n = gpuos_ring_fetch(&xr.ring, out, GPUOS_FETCH);

		if (n) {
			gpuos_ring_consumed(&xr.ring, n);
			total += n;
			continue;
		}
		if (!gpuos_ring_try_exit(&xr.ring))
			continue;
		/* gone: no task left behind that its producer counted as running */
		store_release(&xexits, ++exits);
		for (uint32_t p = total; p < EXIT_PRODUCERS * EXIT_PER; p++)
			ck_assert_msg(!load_relaxed(&xready[p]), "task %u stranded", p);
		/* until a producer that saw EXITED starts one (it then stores RUNNING); with
		 * every producer done and none started, what is left was stranded */
		for (;;) {
			/* acquire: pairs with the producers' decrement after their last publish */
			int left = load_acquire(&xleft);

			if (load_acquire(&xstart))
				break;
			if (!left) {
				ck_assert_msg(gpuos_ring_tail(&xr.ring) == total,
					      "tasks %u.. stranded", total);
				break;
			}
			sched_yield();
		}
		store_relaxed(&xstart, 0);
		store_release((_Atomic uint32_t *)&xr.sh->sh_state, GPUOS_WORKER_RUNNING);
	}
	for (int i = 0; i < EXIT_PRODUCERS; i++)
		pthread_join(th[i], NULL);
	ck_assert_uint_ge(exits, EXIT_PER / EXIT_PHASE - 1);
	rig_free(&xr);
}
END_TEST

/* The ring is full after SIZE unconsumed positions: the next producer waits, and is let go
 * as soon as the consumer frees one; the publication finds a worker that left. */
static _Atomic int kicked;
static bool kick(void *ctx)
{
	struct rig *g = ctx;
	struct gpuos_task out[1];

	if (fetch_add_relaxed(&kicked, 1) == 0 && gpuos_ring_fetch(&g->ring, out, 1))
		gpuos_ring_consumed(&g->ring, 1);
	return false;
}

START_TEST(ring_full_backpressure)
{
	struct rig g;
	struct gpuos_task t = {0};
	uint32_t pos;

	rig_init(&g, 5);
	g.sh->sh_state = GPUOS_WORKER_RUNNING;
	for (unsigned i = 0; i < GPUOS_RING_SIZE; i++) {
		pos = gpuos_ring_reserve(&g.ring);
		ck_assert_uint_eq(gpuos_ring_wait_room(&g.ring, pos, NULL, NULL), 0);
		ck_assert(!gpuos_ring_publish(&g.ring, pos, &t));
	}
	pos = gpuos_ring_reserve(&g.ring);
	ck_assert_uint_gt(gpuos_ring_wait_room(&g.ring, pos, kick, &g), 1);
	ck_assert_int_eq(kicked, 1);
	g.sh->sh_state = GPUOS_WORKER_EXITED;
	ck_assert(gpuos_ring_publish(&g.ring, pos, &t));
	/* another thread's start may still be in the launch: not seen running, so start too */
	g.sh->sh_state = GPUOS_WORKER_STARTING;
	ck_assert(gpuos_ring_publish(&g.ring, pos, &t));
	rig_free(&g);
}
END_TEST

static bool gone(void *ctx)
{
	(void)ctx;
	return true;
}

/* A full ring whose consumer died (its engine is dead): the wait for room ends. */
START_TEST(ring_full_dead_consumer)
{
	struct rig g;
	struct gpuos_task t = {0};
	uint32_t pos;

	rig_init(&g, 5);
	g.sh->sh_state = GPUOS_WORKER_RUNNING;
	for (unsigned i = 0; i < GPUOS_RING_SIZE; i++) {
		pos = gpuos_ring_reserve(&g.ring);
		ck_assert_uint_eq(gpuos_ring_wait_room(&g.ring, pos, NULL, NULL), 0);
		gpuos_ring_publish(&g.ring, pos, &t);
	}
	pos = gpuos_ring_reserve(&g.ring);
	ck_assert_uint_gt(gpuos_ring_wait_room(&g.ring, pos, gone, NULL), 1);
	rig_free(&g);
}
END_TEST

/* Many producers, one consumer thread: nothing lost, nothing twice, each producer's tasks in
 * its order, across many wraps of a full ring. */
#define PRODUCERS    6
#define PER_PRODUCER 60000

static struct rig mp;
static _Atomic int producers_left;

static void *producer(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	struct gpuos_task t = {0};

	for (uint64_t i = 0; i < PER_PRODUCER; i++) {
		uint32_t pos = gpuos_ring_reserve(&mp.ring);
		gpuos_ring_wait_room(&mp.ring, pos, NULL, NULL);
		t.a[0] = id;
		t.a[1] = i;
		gpuos_ring_publish(&mp.ring, pos, &t);
	}
	fetch_add_relaxed(&producers_left, -1);
	return NULL;
}

START_TEST(ring_many_producers)
{
	pthread_t th[PRODUCERS];
	uint64_t next[PRODUCERS] = {0}, total = 0;
	struct gpuos_task out[GPUOS_FETCH];

	rig_init(&mp, 0xfffff000u);
	producers_left = PRODUCERS;
	for (uintptr_t i = 0; i < PRODUCERS; i++)
		pthread_create(&th[i], NULL, producer, (void *)i);
	while (total < (uint64_t)PRODUCERS * PER_PRODUCER) {
		unsigned n = gpuos_ring_fetch(&mp.ring, out, GPUOS_FETCH);
		for (unsigned k = 0; k < n; k++) {
			uint64_t id = out[k].a[0];
			ck_assert_uint_lt(id, PRODUCERS);
			ck_assert_uint_eq(out[k].a[1], next[id]);
			next[id]++;
		}
		if (n)
			gpuos_ring_consumed(&mp.ring, n);
		total += n;
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	ck_assert_uint_eq(gpuos_ring_done(&mp.ring), 0xfffff000u + (uint32_t)total);
	ck_assert_uint_eq(gpuos_ring_fetch(&mp.ring, out, GPUOS_FETCH), 0);
	rig_free(&mp);
}
END_TEST

/* ---- batches ---- */

/* Fake GPU: streams 0x1000.. are blocking, 0x2000.. non-blocking, all on device 0. */
static char log_[8192];
static int fail_go;

static void logf_(const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(log_);

	va_start(ap, fmt);
	vsnprintf(log_ + n, sizeof(log_) - n, fmt, ap);
	va_end(ap);
}

static const char *sname(uintptr_t s)
{
	static char buf[4][32];
	static int k;

	k = (k + 1) % 4;
	if (s == GPUOS_STREAM_LEGACY)
		return "L";
	if (s == GPUOS_STREAM_PTDS)
		return "P";
	snprintf(buf[k], sizeof(buf[k]), "%c%lx", (s & 0x2000) ? 'n' : 'b',
		 (unsigned long)(s & 0xff));
	return buf[k];
}

static int f_describe(void *ctx, uintptr_t s, int *dev, bool *blocking)
{
	(void)ctx;
	*dev = (s & 0x4000) ? 1 : 0;
	*blocking = !(s & 0x2000);
	return 0;
}

static int f_resolve(void *ctx, unsigned op, int dev)
{
	(void)dev;
	(void)ctx;
	return (int)op + 1;
}

static int f_go(void *ctx, int dev, uintptr_t s, unsigned slot, uint32_t v)
{
	(void)ctx, (void)dev, (void)slot;
	if (fail_go)
		return -EIO;
	logf_("go(%s,%u) ", sname(s), v);
	return 0;
}

static int f_wait(void *ctx, int dev, uintptr_t s, unsigned slot, uint32_t v)
{
	(void)ctx, (void)dev, (void)slot;
	logf_("wait(%s,%u) ", sname(s), v);
	return 0;
}

static const struct gpuos_batch_ops fops = {f_describe, f_resolve, f_go, f_wait};
static struct gpuos_batches B;
static struct rig br;

static void batches_setup(void)
{
	rig_init(&br, 0);
	gpuos_batch_init(&B, &fops, NULL);
	atomic_store(&B.nopen, 0); /* kept by init (driver calls read it): a test may leave one */
	B.rings[0] = &br.ring;
	B.nrings[0] = 1;
	log_[0] = 0;
	fail_go = 0;
}

/* Submit @t on @s with device @dev current. */
static int sub_on(uintptr_t s, bool ptsz, int dev, struct gpuos_task *t)
{
	struct gpuos_ring *r;
	uint32_t pos;
	int rc;

	memset(t, 0, sizeof(*t));
	rc = gpuos_batch_submit(&B, s, ptsz, &dev, t, &r, &pos);
	if (!rc) {
		gpuos_ring_wait_room(r, pos, NULL, NULL);
		gpuos_ring_publish(r, pos, t);
		gpuos_batch_ready(&B, t);
	}
	return rc;
}

static int sub(uintptr_t s, bool ptsz, struct gpuos_task *t)
{
	return sub_on(s, ptsz, 0, t);
}

START_TEST(batch_one_go_one_wait)
{
	struct gpuos_task t;
	uintptr_t s = 0x1000;

	batches_setup();
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(sub(s, false, &t), 0);
	ck_assert_uint_eq(t.tseq, 5);
	ck_assert_uint_eq(t.gate, 0);
	ck_assert(gpuos_batch_any_open(&B));
	gpuos_batch_stream_op(&B, s, false, 0);
	ck_assert(!gpuos_batch_any_open(&B));
	gpuos_batch_stream_op(&B, s, false, 0); /* nothing open: nothing enqueued */
	ck_assert_int_eq(sub(s, false, &t), 0);
	ck_assert_uint_eq(t.gate, 2);
	ck_assert_str_eq(log_, "go(b0,1) wait(b0,5) go(b0,2) ");
}
END_TEST

START_TEST(batch_first_task_gated)
{
	struct gpuos_task t;

	batches_setup();
	ck_assert_int_eq(sub(0x1000, false, &t), 0);
	ck_assert_uint_eq(t.gate, 1);
	ck_assert_uint_eq(t.tseq, 1);
	ck_assert_int_eq(sub(0x1000, false, &t), 0);
	ck_assert_uint_eq(t.gate, 0);
}
END_TEST

/* An operation on the legacy stream closes the blocking streams' batches, not the
 * non-blocking ones; one on a blocking stream closes the legacy batch. */
START_TEST(batch_legacy_rules)
{
	struct gpuos_task t;

	batches_setup();
	sub(0x1000, false, &t);
	sub(0x1008, false, &t);
	sub(0x2000, false, &t);
	log_[0] = 0;
	gpuos_batch_stream_op(&B, 0, false, 0);
	ck_assert_str_eq(log_, "wait(b0,1) wait(b8,1) ");
	log_[0] = 0;
	sub(0, false, &t); /* a task on the legacy stream */
	ck_assert_str_eq(log_, "go(L,1) ");
	log_[0] = 0;
	gpuos_batch_stream_op(&B, 0x2000, false, 0); /* non-blocking: only itself */
	ck_assert_str_eq(log_, "wait(n0,1) ");
	log_[0] = 0;
	gpuos_batch_stream_op(&B, 0x1010, false, 0); /* blocking, no tasks: legacy closes */
	ck_assert_str_eq(log_, "wait(L,1) ");
	ck_assert(!gpuos_batch_any_open(&B));
}
END_TEST

/* Tasks: on the legacy stream close blocking batches; on a blocking stream close legacy. */
START_TEST(batch_task_rules)
{
	struct gpuos_task t;

	batches_setup();
	sub(0x1000, false, &t);
	sub(0x2000, false, &t);
	sub(0, false, &t);
	ck_assert_str_eq(log_, "go(b0,1) go(n0,1) wait(b0,1) go(L,1) ");
	log_[0] = 0;
	sub(0x1000, false, &t);
	ck_assert_str_eq(log_, "wait(L,1) go(b0,2) ");
	log_[0] = 0;
	sub(0x2000, false, &t); /* non-blocking: joins its open batch, nothing else */
	ck_assert_str_eq(log_, "");
}
END_TEST

/* Per-thread default stream: a NULL stream with ptsz is this thread's; another thread closes it
 * with a wait on the legacy stream. */
static void *other_thread_legacy_op(void *arg)
{
	(void)arg;
	gpuos_batch_stream_op(&B, 0, false, 0);
	return NULL;
}

START_TEST(batch_ptds)
{
	struct gpuos_task t;
	pthread_t th;

	batches_setup();
	sub(0, true, &t);
	sub(GPUOS_STREAM_PTDS, false, &t);
	ck_assert_uint_eq(t.tseq, 2);
	ck_assert_str_eq(log_, "go(P,1) ");
	log_[0] = 0;
	pthread_create(&th, NULL, other_thread_legacy_op, NULL);
	pthread_join(th, NULL);
	ck_assert_str_eq(log_, "wait(L,2) ");
	log_[0] = 0;
	sub(0, true, &t);
	gpuos_batch_stream_op(&B, 0, true, 0); /* own thread: names its stream */
	ck_assert_str_eq(log_, "go(P,2) wait(P,3) ");
}
END_TEST

START_TEST(batch_capture_and_errors)
{
	struct gpuos_task t;

	batches_setup();
	sub(0x1000, false, &t);
	gpuos_batch_capture_begin(&B);
	ck_assert_str_eq(log_, "go(b0,1) wait(b0,1) ");
	ck_assert_int_eq(sub(0x1000, false, &t), -EBUSY);
	gpuos_batch_capture_begin(&B);
	gpuos_batch_capture_end(&B);
	ck_assert_int_eq(sub(0x1000, false, &t), -EBUSY);
	gpuos_batch_capture_end(&B);
	ck_assert_int_eq(sub(0x1000, false, &t), 0);
	/* a failed go: nothing queued, nothing numbered, the caller falls through */
	gpuos_batch_close_all(&B);
	fail_go = 1;
	uint32_t tail = gpuos_ring_tail(&br.ring);
	ck_assert_int_eq(sub(0x1000, false, &t), -EIO);
	ck_assert_uint_eq(gpuos_ring_tail(&br.ring), tail);
	fail_go = 0;
	ck_assert_int_eq(sub(0x1000, false, &t), 0);
	ck_assert_uint_eq(t.tseq, 3);
	/* injected operators are resolved under the lock */
	memset(&t, 0, sizeof(t));
	t.op = GPUOS_BUILTIN_OPS + 4;
	struct gpuos_ring *r;
	uint32_t pos;
	int dev = 0;
	ck_assert_int_eq(gpuos_batch_submit(&B, 0x1000, false, &dev, &t, &r, &pos), 0);
	ck_assert_uint_eq(t.op, GPUOS_BUILTIN_OPS + 5);
	gpuos_ring_publish(r, pos, &t);
	gpuos_batch_ready(&B, &t);
}
END_TEST

START_TEST(batch_slots_reused)
{
	struct gpuos_task t;

	batches_setup();
	for (uintptr_t i = 0; i < 3 * GPUOS_MAX_SLOTS; i++) {
		uintptr_t s = 0x100000 + i * 0x10000;
		ck_assert_int_eq(sub(s, false, &t), 0);
		gpuos_batch_stream_op(&B, s, false, 0);
		gpuos_batch_forget(&B, s);
	}
	for (uintptr_t i = 0; i < GPUOS_MAX_SLOTS; i++)
		ck_assert_int_eq(sub(0x100000 + i * 0x10000, false, &t), 0);
	ck_assert_int_eq(sub(0x1000, false, &t), -ENOSPC);
}
END_TEST

/* Many threads submit to a few streams while others close them: every stream's tasks are
 * numbered 1..n in ring order, and each batch's wait covers exactly its tasks. */
#define SUBMITTERS    4
#define PER_SUBMITTER 20000
static _Atomic int run_closer;

static void *submitter(void *arg)
{
	uintptr_t s = 0x1000 + 8 * ((uintptr_t)arg % 2);
	struct gpuos_task t;

	for (int i = 0; i < PER_SUBMITTER; i++)
		ck_assert_int_eq(sub(s, false, &t), 0);
	return NULL;
}

static void *closer(void *arg)
{
	(void)arg;
	while (load_relaxed(&run_closer))
		gpuos_batch_stream_op(&B, 0x1000 + 8 * (rand() % 2), false, 0);
	return NULL;
}

static int q_wait(void *ctx, int dev, uintptr_t s, unsigned slot, uint32_t v)
{
	(void)ctx, (void)dev, (void)s, (void)slot, (void)v;
	return 0;
}

static int q_go(void *ctx, int dev, uintptr_t s, unsigned slot, uint32_t v)
{
	(void)ctx, (void)dev, (void)s, (void)slot, (void)v;
	return 0;
}

START_TEST(batch_threads_keep_order)
{
	static const struct gpuos_batch_ops qops = {f_describe, f_resolve, q_go, q_wait};
	pthread_t th[SUBMITTERS], cl;
	uint32_t last[GPUOS_MAX_SLOTS] = {0};
	struct gpuos_task out[GPUOS_FETCH];
	uint64_t total = 0;

	batches_setup();
	B.ops = &qops;
	run_closer = 1;
	pthread_create(&cl, NULL, closer, NULL);
	for (uintptr_t i = 0; i < SUBMITTERS; i++)
		pthread_create(&th[i], NULL, submitter, (void *)i);
	while (total < SUBMITTERS * PER_SUBMITTER) {
		unsigned n = gpuos_ring_fetch(&br.ring, out, GPUOS_FETCH);
		for (unsigned k = 0; k < n; k++) {
			ck_assert_uint_eq(out[k].tseq, last[out[k].slot] + 1);
			last[out[k].slot] = out[k].tseq;
		}
		if (n)
			gpuos_ring_consumed(&br.ring, n);
		total += n;
	}
	for (int i = 0; i < SUBMITTERS; i++)
		pthread_join(th[i], NULL);
	run_closer = 0;
	pthread_join(cl, NULL);
}
END_TEST

/* While parked no task takes a ring position, on the fast path (joining an open batch) or
 * the slow one; after it the open batch goes on. */
START_TEST(batch_park_refuses)
{
	struct gpuos_task t;
	uint32_t tail;

	batches_setup();
	ck_assert_int_eq(sub(0x1000, false, &t), 0);
	gpuos_batch_park_begin(&B);
	gpuos_batch_park_begin(&B); /* parks nest */
	tail = gpuos_ring_tail(&br.ring);
	ck_assert_int_eq(sub(0x1000, false, &t), -EAGAIN);
	ck_assert_int_eq(sub(0x2000, false, &t), -EAGAIN);
	gpuos_batch_park_end(&B);
	ck_assert_int_eq(sub(0x1000, false, &t), -EAGAIN);
	ck_assert_uint_eq(gpuos_ring_tail(&br.ring), tail);
	gpuos_batch_park_end(&B);
	ck_assert_int_eq(sub(0x1000, false, &t), 0);
	ck_assert_uint_eq(t.tseq, 2);
	ck_assert_uint_eq(t.gate, 0);
	ck_assert_str_eq(log_, "go(b0,1) ");
}
END_TEST

/* Submitters race parks: once park_begin returns, the tail stays put until park_end. */
static _Atomic int run_parked_submitters;

static void *park_submitter(void *arg)
{
	uintptr_t s = 0x1000 + 8 * (uintptr_t)arg;
	struct gpuos_task t;

	while (load_relaxed(&run_parked_submitters)) {
		int rc = sub(s, false, &t);
		ck_assert(rc == 0 || rc == -EAGAIN);
	}
	return NULL;
}

START_TEST(batch_park_fences_submitters)
{
	static const struct gpuos_batch_ops qops = {f_describe, f_resolve, q_go, q_wait};
	pthread_t th[SUBMITTERS];
	bool joined[SUBMITTERS] = {0};
	struct gpuos_task out[GPUOS_FETCH];
	int alive = SUBMITTERS;

	batches_setup();
	B.ops = &qops;
	run_parked_submitters = 1;
	for (uintptr_t i = 0; i < SUBMITTERS; i++)
		pthread_create(&th[i], NULL, park_submitter, (void *)i);
	for (int k = 0; k < 200; k++) {
		for (int j = 0; j < 50; j++) {
			unsigned n = gpuos_ring_fetch(&br.ring, out, GPUOS_FETCH);
			if (n)
				gpuos_ring_consumed(&br.ring, n);
		}
		gpuos_batch_park_begin(&B);
		uint32_t tail = gpuos_ring_tail(&br.ring);
		usleep(200);
		ck_assert_uint_eq(gpuos_ring_tail(&br.ring), tail);
		gpuos_batch_park_end(&B);
	}
	run_parked_submitters = 0;
	while (alive) { /* submitters waiting for room need a consumer to finish */
		unsigned n = gpuos_ring_fetch(&br.ring, out, GPUOS_FETCH);
		if (n)
			gpuos_ring_consumed(&br.ring, n);
		for (int i = 0; i < SUBMITTERS; i++)
			if (!joined[i] && !pthread_tryjoin_np(th[i], NULL)) {
				joined[i] = true;
				alive--;
			}
	}
}
END_TEST

/*
 * Injected operators join an open batch on the fast path (no table lock), and an alias
 * switch under gpuos_batch_freeze splits them exactly at its tail snapshot: every task at a
 * position before it names the slot before, every one from it on the new slot.
 */
static _Atomic unsigned alias_now;
static _Atomic int run_alias_submitters;

static int a_resolve(void *ctx, unsigned op, int dev)
{
	static _Atomic unsigned calls;
	unsigned v = load_relaxed(&alias_now);

	(void)ctx, (void)op, (void)dev;
	/* now and then, time for a switch to slip in before the caller reserves */
	if (fetch_add_relaxed(&calls, 1) % 4 == 0)
		usleep(20);
	return GPUOS_BUILTIN_OPS + (int)v;
}

static void *alias_submitter(void *arg)
{
	uintptr_t s = 0x1000 + 8 * (uintptr_t)arg;
	struct gpuos_task t;
	struct gpuos_ring *r;
	uint32_t pos;

	while (load_relaxed(&run_alias_submitters)) {
		int dev = 0;

		memset(&t, 0, sizeof(t));
		t.op = GPUOS_BUILTIN_OPS + 1;
		ck_assert_int_eq(gpuos_batch_submit(&B, s, false, &dev, &t, &r, &pos), 0);
		gpuos_ring_wait_room(r, pos, NULL, NULL);
		gpuos_ring_publish(r, pos, &t);
		gpuos_batch_ready(&B, &t);
	}
	return NULL;
}

static void *one_injected(void *arg)
{
	struct gpuos_task *t = arg;
	struct gpuos_ring *r;
	uint32_t pos;
	int dev = 0;

	ck_assert_int_eq(gpuos_batch_submit(&B, 0x1000, false, &dev, t, &r, &pos), 0);
	gpuos_ring_publish(r, pos, t);
	gpuos_batch_ready(&B, t);
	return NULL;
}

/* Consume what the ring holds, noting each task's operator at its position. */
static unsigned drain_ops(uint16_t *op_at, uint32_t max)
{
	struct gpuos_task out[GPUOS_FETCH];
	unsigned n = gpuos_ring_fetch(&br.ring, out, GPUOS_FETCH);

	for (unsigned i = 0; i < n; i++)
		if (out[i].seq - 1 < max)
			op_at[out[i].seq - 1] = out[i].op;
	if (n)
		gpuos_ring_consumed(&br.ring, n);
	return n;
}

START_TEST(batch_alias_switch_splits)
{
	static const struct gpuos_batch_ops aops = {f_describe, a_resolve, q_go, q_wait};
	enum { SWITCHES = 200, MAXPOS = 1 << 20 };
	uint16_t *op_at = calloc(MAXPOS, sizeof(*op_at));
	uint32_t snap[SWITCHES], fetched = 0;
	struct gpuos_task out[GPUOS_FETCH], t = {0};
	struct timespec ts;
	pthread_t th[SUBMITTERS];
	bool joined[SUBMITTERS] = {0};
	int alive = SUBMITTERS;

	batches_setup();
	B.ops = &aops;
	store_relaxed(&alias_now, 0);
	/* the fast path: with the batch open, a submit goes through while the table lock is held */
	ck_assert_int_eq(sub(0x1000, false, &t), 0);
	memset(&t, 0, sizeof(t));
	t.op = GPUOS_BUILTIN_OPS + 1;
	pthread_mutex_lock(&B.lock);
	pthread_create(&th[0], NULL, one_injected, &t);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	ck_assert_int_eq(pthread_timedjoin_np(th[0], NULL, &ts), 0);
	pthread_mutex_unlock(&B.lock);
	ck_assert_uint_eq(t.op, GPUOS_BUILTIN_OPS);

	for (unsigned n; (n = gpuos_ring_fetch(&br.ring, out, GPUOS_FETCH));)
		gpuos_ring_consumed(&br.ring, n); /* (the two above) */
	fetched = gpuos_ring_tail(&br.ring);
	run_alias_submitters = 1;
	for (uintptr_t i = 0; i < SUBMITTERS; i++)
		pthread_create(&th[i], NULL, alias_submitter, (void *)i);
	for (unsigned k = 0; k < SWITCHES + 1; k++) {
		/* consume until the submitters took a few positions since the last switch */
		for (uint32_t from = gpuos_ring_tail(&br.ring);
		     gpuos_ring_tail(&br.ring) - from < 4 * SUBMITTERS;)
			drain_ops(op_at, MAXPOS);
		if (k == SWITCHES)
			break;
		gpuos_batch_freeze(&B);
		snap[k] = gpuos_ring_tail(&br.ring);
		store_relaxed(&alias_now, k + 1);
		gpuos_batch_thaw(&B);
	}
	run_alias_submitters = 0;
	while (alive) {
		drain_ops(op_at, MAXPOS);
		for (int i = 0; i < SUBMITTERS; i++)
			if (!joined[i] && !pthread_tryjoin_np(th[i], NULL)) {
				joined[i] = true;
				alive--;
			}
	}
	while (drain_ops(op_at, MAXPOS))
		;
	/* the slot in force at each position: the last switch whose snapshot is at or before it */
	uint32_t end = gpuos_ring_tail(&br.ring);
	ck_assert_uint_gt(end, snap[SWITCHES - 1]); /* the submitters ran past the last switch */
	for (uint32_t p = fetched, k = 0; p < end && p < MAXPOS; p++) {
		while (k < SWITCHES && snap[k] <= p)
			k++;
		ck_assert_msg(op_at[p] == GPUOS_BUILTIN_OPS + k, "position %u: slot %u, want %u", p,
			      op_at[p] - GPUOS_BUILTIN_OPS, k);
	}
	free(op_at);
}
END_TEST

/* A close waits until every task it covers is published and its worker started. */
static _Atomic int closed_flag;

static void *close_thread(void *arg)
{
	(void)arg;
	gpuos_batch_stream_op(&B, 0x1000, false, 0);
	store_relaxed(&closed_flag, 1);
	return NULL;
}

START_TEST(batch_close_waits_ready)
{
	struct gpuos_task t = {0};
	struct gpuos_ring *r;
	uint32_t pos;
	pthread_t th;
	int dev = 0;

	batches_setup();
	ck_assert_int_eq(gpuos_batch_submit(&B, 0x1000, false, &dev, &t, &r, &pos), 0);
	closed_flag = 0;
	pthread_create(&th, NULL, close_thread, NULL);
	usleep(20000);
	ck_assert_int_eq(load_relaxed(&closed_flag), 0);
	ck_assert_str_eq(log_, "go(b0,1) ");
	gpuos_ring_publish(r, pos, &t);
	gpuos_batch_ready(&B, &t);
	pthread_join(th, NULL);
	ck_assert_int_eq(load_relaxed(&closed_flag), 1);
	ck_assert_str_eq(log_, "go(b0,1) wait(b0,1) ");
}
END_TEST

/* Run the first @n published tasks of the ring as the worker would (sh_done moves). */
static void consume(unsigned n)
{
	struct gpuos_task out[8];

	ck_assert_uint_le(n, 8);
	ck_assert_uint_eq(gpuos_ring_fetch(&br.ring, out, n), n);
	gpuos_ring_consumed(&br.ring, n);
}

/* A close whose tasks have all run puts no wait on the stream; one task short, it does.
 * Streams sharing the ring are told apart by their own last position. */
START_TEST(batch_close_elides_wait_when_done)
{
	struct gpuos_task t;

	batches_setup();
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(sub(0x1000, false, &t), 0);
	consume(2);
	gpuos_batch_stream_op(&B, 0x1000, false, 0);
	ck_assert_str_eq(log_, "go(b0,1) wait(b0,3) ");
	ck_assert_uint_eq(B.nelided, 0);

	log_[0] = 0;
	ck_assert_int_eq(sub(0x1000, false, &t), 0);
	ck_assert_int_eq(sub(0x1008, false, &t), 0); /* another stream, same ring */
	consume(2);				     /* the earlier batch's last, and b0's task */
	gpuos_batch_stream_op(&B, 0x1000, false, 0);
	gpuos_batch_stream_op(&B, 0x1008, false, 0);
	ck_assert_str_eq(log_, "go(b0,2) go(b8,1) wait(b8,1) ");
	ck_assert_uint_eq(B.nelided, 1);
	ck_assert_uint_eq(B.nclosed, 3);
	ck_assert(!gpuos_batch_any_open(&B));
}
END_TEST

static unsigned call(uintptr_t s, bool ptsz, int dev)
{
	return gpuos_batch_call_bucket(s, ptsz, dev);
}

/* While a driver call on a stream is in flight no batch opens on it or on a stream it orders
 * with; joining a batch that was open before the call closed it is not possible either. */
START_TEST(batch_call_in_flight_refuses_open)
{
	struct gpuos_task t;

	batches_setup();
	ck_assert(!gpuos_batch_call_begin(&B, call(0, false, 0))); /* legacy; nothing open */
	ck_assert_int_eq(sub(0, false, &t), -EINPROGRESS);
	ck_assert_int_eq(sub(0x1000, false, &t), -EINPROGRESS); /* blocking */
	ck_assert_int_eq(sub(0x2000, false, &t), 0);		/* non-blocking: unrelated */
	gpuos_batch_call_end(&B, call(0, false, 0));
	ck_assert_int_eq(sub(0x1000, false, &t), 0);
	ck_assert_str_eq(log_, "go(n0,1) go(b0,1) ");

	log_[0] = 0;
	ck_assert(gpuos_batch_call_begin(&B, call(0x1000, false, -1))); /* batches are open */
	gpuos_batch_stream_op(&B, 0x1000, false, 0);
	ck_assert_int_eq(sub(0x1000, false, &t), -EINPROGRESS); /* its batch was closed */
	ck_assert_int_eq(sub(0, false, &t), -EINPROGRESS);	/* legacy orders with it */
	ck_assert_int_eq(sub(0x1008, false, &t), 0);		/* another blocking stream */
	ck_assert_int_eq(sub(0x2000, false, &t), 0);		/* joins its open batch */
	gpuos_batch_call_end(&B, call(0x1000, false, -1));
	ck_assert_int_eq(sub(0x1000, false, &t), 0);
	ck_assert_uint_eq(t.gate, 2);
	ck_assert_str_eq(log_, "wait(b0,1) go(b8,1) go(b0,2) ");

	/* this thread's per-thread stream: its own bucket */
	log_[0] = 0;
	gpuos_batch_call_begin(&B, call(0, true, -1));
	ck_assert_int_eq(sub(0, true, &t), -EINPROGRESS);
	ck_assert_int_eq(sub(0, false, &t), -EINPROGRESS); /* legacy: any call may block it */
	gpuos_batch_call_end(&B, call(0, true, -1));
	ck_assert_int_eq(sub(0, true, &t), 0);
	ck_assert_uint_eq(B.nrefused, 6);
	for (unsigned i = 0; i < GPUOS_CALL_BUCKETS; i++)
		ck_assert_uint_eq(atomic_load(&B.calls[i]), 0);
}
END_TEST

/* A legacy stream is its context's: a call on device 0's holds back device 0's batches (its
 * legacy stream's, its blocking streams') but not device 1's; a call whose context is not known
 * to be a device's primary one holds back every device's. */
START_TEST(batch_call_legacy_by_device)
{
	struct gpuos_task t;
	unsigned k;

	batches_setup();
	B.rings[1] = &br.ring;
	B.nrings[1] = 1;
	ck_assert_uint_eq(call(0, false, 0), call(GPUOS_STREAM_LEGACY, false, 0));
	ck_assert_uint_ne(call(0, false, 0), call(0, false, 1));
	ck_assert_uint_eq(call(0, false, -1), 0);
	ck_assert_uint_eq(call(0x1000, false, 3), call(0x1000, false, -1)); /* its own device */
	ck_assert_uint_gt(call(0x1000, false, 0), GPUOS_CALL_LEGACY);
	ck_assert_uint_gt(call(0, true, 0),
			  GPUOS_CALL_LEGACY); /* per-thread: blocking, not legacy */
	ck_assert_uint_lt(call(0, true, 0), GPUOS_CALL_BUCKETS);

	k = call(0, false, 0);
	gpuos_batch_call_begin(&B, k);
	ck_assert_int_eq(sub_on(0, false, 0, &t), -EINPROGRESS);
	ck_assert_int_eq(sub_on(0x1000, false, 0, &t), -EINPROGRESS); /* blocking, device 0 */
	ck_assert_int_eq(sub_on(0, false, 1, &t), 0);		      /* device 1's legacy */
	ck_assert_int_eq(sub_on(0x4000, false, 1, &t), 0); /* a blocking stream of device 1 */
	gpuos_batch_call_end(&B, k);
	ck_assert_uint_eq(B.nrefused, 2);

	gpuos_batch_close_all(&B);
	k = call(GPUOS_STREAM_LEGACY, false, -1);
	gpuos_batch_call_begin(&B, k);
	ck_assert_int_eq(sub_on(0, false, 1, &t), -EINPROGRESS);
	ck_assert_int_eq(sub_on(0x4000, false, 1, &t), -EINPROGRESS);
	ck_assert_int_eq(sub_on(0x1000, false, 0, &t), -EINPROGRESS);
	ck_assert_int_eq(sub_on(0x2000, false, 0, &t), 0); /* non-blocking: unrelated */
	gpuos_batch_call_end(&B, k);
	ck_assert_int_eq(sub_on(0, false, 1, &t), 0);
	ck_assert_uint_eq(B.nrefused, 5);
	for (unsigned i = 0; i < GPUOS_CALL_BUCKETS; i++)
		ck_assert_uint_eq(atomic_load(&B.calls[i]), 0);
}
END_TEST

/*
 * The race this guards: thread A's driver call on the legacy stream closes the stream's batch
 * when it enters; thread B opens a new batch on the stream before A's work is enqueued, so
 * that batch's go comes before A's work; A's next task joins it and runs too early. Here A
 * checks, between entering and leaving its call (where its work is enqueued), that no batch
 * of the legacy stream or of a blocking stream is open.
 */
static _Atomic int run_racer;

static void *racing_submitter(void *arg)
{
	struct gpuos_task t;
	unsigned i = 0;

	(void)arg;
	while (load_relaxed(&run_racer)) {
		int rc = sub(i++ % 3 ? 0 : 0x1000, false, &t);
		ck_assert(rc == 0 || rc == -EINPROGRESS);
	}
	return NULL;
}

static bool slot_open(uintptr_t key)
{
	bool open = false;

	for (unsigned i = 0; i < GPUOS_MAX_SLOTS; i++) {
		struct gpuos_slot *s = &B.slot[i];
		if (load_relaxed(&s->key) != key)
			continue;
		pthread_mutex_lock(&s->lock);
		open = s->open;
		pthread_mutex_unlock(&s->lock);
	}
	return open;
}

static void *racing_caller(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		uintptr_t s = i % 2 ? 0 : 0x1000;

		unsigned k = call(s, false, i % 4 == 1 ? -1 : 0); /* its context known or not */

		if (gpuos_batch_call_begin(&B, k))
			gpuos_batch_stream_op(&B, s, false, 0);
		sched_yield(); /* the driver enqueues the call's work */
		ck_assert_msg(!slot_open(0x1) && !slot_open(0x1000),
			      "a batch opened during a call on a stream it orders with (call %d)",
			      i);
		gpuos_batch_call_end(&B, k);
		if (i % 64 == 0)
			usleep(10); /* let batches open between calls too */
	}
	return NULL;
}

START_TEST(batch_call_in_flight_keeps_order)
{
	static const struct gpuos_batch_ops qops = {f_describe, f_resolve, q_go, q_wait};
	pthread_t sub_th, call_th;
	struct gpuos_task out[GPUOS_FETCH];
	void *ret;

	batches_setup();
	B.ops = &qops;
	run_racer = 1;
	pthread_create(&sub_th, NULL, racing_submitter, NULL);
	pthread_create(&call_th, NULL, racing_caller, NULL);
	while (pthread_tryjoin_np(call_th, &ret)) {
		unsigned n = gpuos_ring_fetch(&br.ring, out, GPUOS_FETCH);
		if (n)
			gpuos_ring_consumed(&br.ring, n);
	}
	run_racer = 0;
	while (pthread_tryjoin_np(sub_th, &ret)) {
		unsigned n = gpuos_ring_fetch(&br.ring, out, GPUOS_FETCH);
		if (n)
			gpuos_ring_consumed(&br.ring, n);
	}
	ck_assert_uint_gt(B.nopened, 100);  /* batches did open between calls */
	ck_assert_uint_gt(B.nrefused, 100); /* and were refused during them */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fusion");
	TCase *ring = tcase_create("ring"), *batch = tcase_create("batch");
	SRunner *sr;
	int failed;

	tcase_set_timeout(ring, 120);
	tcase_set_timeout(batch, 120);
	tcase_add_test(ring, ring_single_fifo_wraps);
	tcase_add_test(ring, ring_gap_stops_fetch);
	tcase_add_test(ring, ring_full_backpressure);
	tcase_add_test(ring, ring_full_dead_consumer);
	tcase_add_test(ring, ring_exit_waits_for_reserved);
	tcase_add_test(ring, ring_exit_never_strands);
	tcase_add_test(ring, ring_many_producers);
	tcase_add_test(batch, batch_one_go_one_wait);
	tcase_add_test(batch, batch_close_elides_wait_when_done);
	tcase_add_test(batch, batch_first_task_gated);
	tcase_add_test(batch, batch_call_in_flight_refuses_open);
	tcase_add_test(batch, batch_call_in_flight_keeps_order);
	tcase_add_test(batch, batch_call_legacy_by_device);
	tcase_add_test(batch, batch_legacy_rules);
	tcase_add_test(batch, batch_task_rules);
	tcase_add_test(batch, batch_ptds);
	tcase_add_test(batch, batch_capture_and_errors);
	tcase_add_test(batch, batch_slots_reused);
	tcase_add_test(batch, batch_threads_keep_order);
	tcase_add_test(batch, batch_park_refuses);
	tcase_add_test(batch, batch_close_waits_ready);
	tcase_add_test(batch, batch_park_fences_submitters);
	tcase_add_test(batch, batch_alias_switch_splits);
	suite_add_tcase(s, ring);
	suite_add_tcase(s, batch);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
