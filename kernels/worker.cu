// SPDX-License-Identifier: MIT
/*
 * The persistent worker: one block per ring, running until its ring is empty and it is told to
 * stop or has been idle long enough. Built with -rdc so that operators in separately loaded
 * modules can be called through the table (absolute code addresses; DESIGN.md).
 *
 * Warp 0 fetches: up to 32 descriptors at once (one lane each: one PCIe round trip for the
 * lot, not one per task) into a queue in shared memory, gives the ring slots back, and goes
 * on fetching while the other warps compute, so the fetch latency hides behind the work.
 * Tasks' small parameter blocks come with their descriptors, into shared memory.
 * When the ring is empty it watches only the next descriptor. The compute warps run the queue
 * in ring order: built-in operators from a switch, an injected operator once per run of its
 * tasks; a named barrier (gpuos_sync) between dependent tasks.
 */
#include <cuda/atomic>
#include <cuda_pipeline.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "kernels/task.h"
}

typedef GPUOS_OP_SIGNATURE((*gpuos_op_fn));

/* The compute loop reads a task's header as one uint4 {seq, op | slot << 16, gate, tseq}. */
static_assert(sizeof(struct gpuos_task) == 64 && offsetof(struct gpuos_task, op) == 4 &&
		      offsetof(struct gpuos_task, slot) == 6 && offsetof(struct gpuos_task, gate) == 8 &&
		      offsetof(struct gpuos_task, tseq) == 12,
	      "task header layout");

/* Physical operator slots; the host writes an entry only while no task can use it. */
extern "C" __device__ gpuos_op_fn gpuos_op_table[GPUOS_PHYS_OPS];
__device__ gpuos_op_fn gpuos_op_table[GPUOS_PHYS_OPS];

struct gpuos_worker_params {
	struct gpuos_task *tasks;   /* this ring's descriptors (pinned host memory) */
	struct gpuos_ring_sh *sh;   /* this ring's shared fields (pinned host memory) */
	uint32_t *go, *done;	    /* per stream slot (device memory) */
	unsigned long long idle_ns; /* exit after this long with an empty ring */
	unsigned poll_ns;	    /* pause between looks at an empty ring */
};

#define QN 64u /* queue in shared memory: two fetches */
/* A queue entry's parameter-block copy (kernels/task.h). sm_75 has 64 KiB of shared memory a
 * block and the window and queue take it: its blocks stay in the arena. */
#if __CUDA_ARCH__ >= 800
#define PSLOT GPUOS_PBLK_SLOT
#else
#define PSLOT 0u
#endif

/* The operators' shared-memory window: the launch's dynamic shared memory (engine.c). */
extern __shared__ __align__(16) unsigned char gpuos_window[];

typedef cuda::atomic_ref<uint32_t, cuda::thread_scope_system> sys_u32;
typedef cuda::atomic_ref<uint32_t, cuda::thread_scope_device> dev_u32;
typedef cuda::atomic_ref<uint32_t, cuda::thread_scope_block> cta_u32;

static __device__ __forceinline__ unsigned long long now_ns(void)
{
	unsigned long long t;
	asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
	return t;
}

static __device__ __forceinline__ uint32_t ld_acquire_sys(uint32_t *p)
{
	return sys_u32(*p).load(cuda::memory_order_acquire);
}

static __device__ __forceinline__ void st_release_sys(uint32_t *p, uint32_t v)
{
	sys_u32(*p).store(v, cuda::memory_order_release);
}

static __device__ __forceinline__ void st_relaxed_sys(uint32_t *p, uint32_t v)
{
	sys_u32(*p).store(v, cuda::memory_order_relaxed);
}

static __device__ __forceinline__ float f32(uint64_t bits)
{
	return __uint_as_float((uint32_t)bits);
}

/* Built-in operators: every compute thread calls them; direct dispatch, no call. */
static __device__ __forceinline__ void run_builtin(const struct gpuos_task *t)
{
	unsigned i = gpuos_tid(), step = gpuos_nthreads();

	switch (t->op) {
	/* Elementwise built-ins load four elements a thread before storing any: a chain of
	 * dependent tasks pays one L2 round trip a task, not one per element (the compiler may
	 * not reorder them itself: y may be x). Same results: each element is written from
	 * its own inputs only, as in one thread per element. */
	case GPUOS_OP_AXPB: {
		float *y = (float *)t->a[0];
		const float *x = (const float *)t->a[1];
		float a = f32(t->a[3]), b = f32(t->a[4]), v[4];
		uint64_t n = t->a[2];
		for (uint64_t k0 = i; k0 < n; k0 += 4 * (uint64_t)step) {
#pragma unroll
			for (int j = 0; j < 4; j++)
				if (k0 + j * step < n)
					v[j] = x[k0 + j * step];
#pragma unroll
			for (int j = 0; j < 4; j++)
				if (k0 + j * step < n)
					y[k0 + j * step] = __fmaf_rn(a, v[j], b);
		}
		break;
	}
	case GPUOS_OP_ADD: {
		float *z = (float *)t->a[0];
		const float *x = (const float *)t->a[1], *y = (const float *)t->a[2];
		float u[4], v[4];
		uint64_t n = t->a[3];
		for (uint64_t k0 = i; k0 < n; k0 += 4 * (uint64_t)step) {
#pragma unroll
			for (int j = 0; j < 4; j++)
				if (k0 + j * step < n) {
					u[j] = x[k0 + j * step];
					v[j] = y[k0 + j * step];
				}
#pragma unroll
			for (int j = 0; j < 4; j++)
				if (k0 + j * step < n)
					z[k0 + j * step] = __fadd_rn(u[j], v[j]);
		}
		break;
	}
	case GPUOS_OP_FILL: {
		uint32_t *y = (uint32_t *)t->a[0];
		for (uint64_t k = i; k < t->a[1]; k += step)
			y[k] = (uint32_t)t->a[2];
		break;
	}
	case GPUOS_OP_INC: {
		uint32_t *y = (uint32_t *)t->a[0];
		for (uint64_t k = i; k < t->a[1]; k += step)
			y[k] += 1;
		break;
	}
	case GPUOS_OP_SPIN:
		if (i == 0) {
			unsigned long long end = now_ns() + t->a[0];
			while (now_ns() < end)
				__nanosleep(1000);
		}
		break;
	default: /* NOP, and anything unknown: the host never sends it */
		break;
	}
}

/*
 * Exit handshake with the producers (fusion/ring.c gpuos_ring_publish, Dekker style): store
 * EXITED, then look at sh_tail; a producer reserves its position (sh_tail), stores the
 * descriptor, then looks at sh_state. With a full fence on both sides at least one of us sees
 * the other: either we find a position handed out past our head and go on (waiting for its
 * descriptor if it is still being written), or the producer finds EXITED and launches a new
 * worker (which queues behind us on the ring's stream, so two never run at once). Looking
 * at the descriptor at head alone is not enough: with it still being written, a later one
 * whose producer saw RUNNING would be left behind, its stream maybe already waiting for it.
 */
/*
 * Stack for injected operators. nvlink sizes the worker's per-thread stack from the calls it
 * can see, and it cannot see through gpuos_op_table: without this the worker has none, and an
 * operator with a stack frame (register spills; the slow path of IEEE division and square
 * root saves registers around its call) writes below the thread's allocation, an illegal
 * address. The worker calls this for a table entry of 1, which the host never writes, so it
 * never runs; it makes every operator call site GPUOS_OP_STACK bytes deep. Operators whose
 * frames add up to more are refused at install (kernels/ops.c).
 */
static __device__ __noinline__ unsigned stack_reserve(unsigned k)
{
	volatile unsigned char pad[GPUOS_OP_STACK];

	pad[k % GPUOS_OP_STACK] = (unsigned char)k;
	return pad[(k * 7u) % GPUOS_OP_STACK];
}

static __device__ bool try_exit(const struct gpuos_worker_params &p, uint32_t head)
{
	st_release_sys(&p.sh->sh_state, GPUOS_WORKER_EXITED);
	/* full fence: orders the store above before the load below; pairs with the fence
	 * between the reservation (and seq store) and the sh_state load in gpuos_ring_publish */
	cuda::atomic_thread_fence(cuda::memory_order_seq_cst, cuda::thread_scope_system);
	if (ld_acquire_sys(&p.sh->sh_tail) != head) {
		st_release_sys(&p.sh->sh_state, GPUOS_WORKER_RUNNING);
		return false;
	}
	return true;
}

/*
 * Warp 0, after copying the @n descriptors at queue index @tail: the parameter blocks of those
 * flagged GPUOS_TASK_PBLK into @pb (PSLOT bytes an entry), all in flight at once (one bus
 * round trip for the lot, asynchronous copies that hold no registers), then each entry's a[2]
 * at its copy, or at the arena for a block too large, and the flag cleared.
 */
static __device__ void fetch_blocks(struct gpuos_task *q, unsigned char *pb, uint32_t tail,
				    unsigned n, unsigned lane)
{
	struct gpuos_task *e = &q[(tail + lane) % QN];
	const bool has = lane < n && (e->op & GPUOS_TASK_PBLK);
	const uint64_t a2 = has ? e->a[2] : 0;
	const unsigned units = (unsigned)(a2 & GPUOS_PBLK_LEN_MASK) + 1;
	const bool fits = units * 16 <= PSLOT;
	unsigned m = __ballot_sync(0xffffffffu, has && fits);

	for (; m; m &= m - 1) {
		const unsigned j = __ffs(m) - 1;
		const uint64_t v = __shfl_sync(0xffffffffu, a2, j);
		const uint4 *src = (const uint4 *)(v & ~(uint64_t)GPUOS_PBLK_LEN_MASK);
		uint4 *dst = (uint4 *)(pb + (size_t)((tail + j) % QN) * PSLOT);

		for (unsigned c = lane; c <= (unsigned)(v & GPUOS_PBLK_LEN_MASK); c += 32)
			__pipeline_memcpy_async(dst + c, src + c, 16);
	}
	__pipeline_commit();
	__pipeline_wait_prior(0);
	if (has) {
		e->a[2] = fits ? (uint64_t)(uintptr_t)(pb + (size_t)((tail + lane) % QN) * PSLOT)
			       : a2 & ~(uint64_t)GPUOS_PBLK_LEN_MASK;
		e->op &= ~GPUOS_TASK_PBLK;
	}
	/* every lane's copies and entries before lane 0 publishes them (its release of
	 * s_tail) */
	__syncwarp();
}

/* Warp 0: ring -> queue. Returns when the worker is to exit (the queue is empty then). */
static __device__ void fetch_loop(const struct gpuos_worker_params &p, struct gpuos_task *q,
				  unsigned char *pb, uint32_t base, uint32_t *s_tail,
				  uint32_t *s_head, uint32_t *s_exit)
{
	const unsigned lane = threadIdx.x & 31;
	uint32_t head = base, tail = 0;
	unsigned long long idle_since = now_ns(), room_since = 0;
	unsigned backoff = 64;
	unsigned long long prof[GPUOS_PROF_COUNT] = { 0 };
	bool watching = false; /* ring was empty: look at the next descriptor only */

	for (;;) {
		/* acquire: pairs with the compute side's release of s_head after it read the
		 * queue entries we are about to overwrite */
		uint32_t room = QN - (tail - cta_u32(*s_head).load(cuda::memory_order_acquire));
		if (room < 32) {
			/* the compute warps need microseconds to free a fetch's worth: back
			 * off, so that this loop takes few issue slots from them */
			if (!room_since) {
				room_since = now_ns();
				backoff = 64;
			}
			__nanosleep(backoff);
			backoff = backoff < 1024 ? 2 * backoff : backoff;
			continue;
		}
		unsigned long long t0 = now_ns();
		if (room_since) {
			prof[GPUOS_PROF_ROOM_NS] += t0 - room_since;
			room_since = 0;
		}
		uint32_t pos = head + lane;
		struct gpuos_task *d = &p.tasks[pos & (GPUOS_RING_SIZE - 1)];
		/* acquire: pairs with the release store of seq in gpuos_ring_publish; the body
		 * read below is then the producer's */
		bool ok = (!watching || lane == 0) && ld_acquire_sys(&d->seq) == pos + 1;
		unsigned m = __ballot_sync(0xffffffffu, ok);
		unsigned n = (m == 0xffffffffu) ? 32 : __ffs(~m) - 1;

		if (n) {
			if (watching) {
				watching = false; /* one found: fetch a full batch next time */
				n = 1;
			}
			/* Copy the n descriptors as 16-byte chunks, lane by lane along memory:
			 * each warp load reads 512 contiguous bytes (a few PCIe reads), where
			 * one descriptor per lane would scatter 4n small ones, which the bus
			 * serves a few at a time. Each lane's acquire of a seq, then this warp
			 * barrier, orders every lane's copy after the producers' stores. */
			__syncwarp();
			for (unsigned c = lane; c < 4 * n; c += 32) {
				const uint4 *src = (const uint4 *)&p.tasks[(head + c / 4) &
									   (GPUOS_RING_SIZE - 1)];
				uint4 *dst = (uint4 *)&q[(tail + c / 4) % QN];
				dst[c % 4] = src[c % 4];
			}
			__syncwarp();
			fetch_blocks(q, pb, tail, n, lane);
			head += n;
			tail += n;
			if (lane == 0) {
				/* release: the queue entries before the count; pairs with the
				 * compute side's acquire of s_tail */
				cta_u32(*s_tail).store(tail, cuda::memory_order_release);
				/* relaxed, no fence (a system-scope fence costs about a
				 * microsecond): the descriptor loads it must follow completed,
				 * their values are in q[]; producers may now reuse them
				 * (gpuos_ring_wait_room reads it with an acquire) */
				st_relaxed_sys(&p.sh->sh_head, head);
			}
			idle_since = now_ns();
			prof[GPUOS_PROF_FETCHES]++;
			prof[GPUOS_PROF_FETCHED] += n;
			prof[GPUOS_PROF_FETCH_NS] += idle_since - t0;
			continue;
		}
		watching = true;
		/* empty ring: leave when stopped or idle and the queue has drained */
		bool drained = cta_u32(*s_head).load(cuda::memory_order_acquire) == tail;
		int leave = 0;
		/* and no position handed out past head: a producer is still writing it */
		if (lane == 0 && drained &&
		    (ld_acquire_sys(&p.sh->sh_stop) || now_ns() - idle_since > p.idle_ns) &&
		    ld_acquire_sys(&p.sh->sh_tail) == head)
			leave = try_exit(p, head);
		if (__shfl_sync(0xffffffffu, leave, 0)) {
			if (lane == 0) {
				for (int k = 0; k < GPUOS_PROF_STRETCHES; k++)
					p.sh->sh_prof[k] += prof[k];
				/* release: nothing to publish but the flag; pairs with the compute
				 * side's acquire */
				cta_u32(*s_exit).store(1, cuda::memory_order_release);
			}
			return;
		}
		__nanosleep(p.poll_ns);
	}
}

/*
 * Report the queue entries [from, to) as done: done[slot] = the last of each stream's tasks
 * there. Called by one thread, after a barrier that ended the tasks; one device-scope fence
 * (about half a microsecond) for the lot, never one per task.
 */
static __device__ void flush_done(const struct gpuos_worker_params &p, const struct gpuos_task *q,
				  uint32_t from, uint32_t to)
{
	if (from == to)
		return;
	/* release: the block's writes to the tasks' outputs (barrier before the call) before
	 * done; pairs with the streams' cuStreamWaitValue32 at batch close */
	cuda::atomic_thread_fence(cuda::memory_order_release, cuda::thread_scope_device);
	for (uint32_t k = from; k != to; k++) {
		const struct gpuos_task *tk = &q[k % QN];
		if (k + 1 == to || q[(k + 1) % QN].slot != tk->slot)
			dev_u32(p.done[tk->slot]).store(tk->tseq, cuda::memory_order_relaxed);
	}
}

/* The compute warps: queue -> operators, in order. */
static __device__ void compute_loop(const struct gpuos_worker_params &p, struct gpuos_task *q,
				    uint32_t base, uint32_t *s_tail, uint32_t *s_head,
				    uint32_t *s_exit, uint32_t *s_avail)
{
	const unsigned ctid = gpuos_tid();
	uint32_t h = 0;
	unsigned long long stretches = 0, starve = 0, gate_ns = 0, busy_until = now_ns();

	for (;;) {
		if (ctid == 0) {
			uint32_t t;
			/* acquire: pairs with the fetcher's release of s_tail */
			while ((t = cta_u32(*s_tail).load(cuda::memory_order_acquire)) == h) {
				if (cta_u32(*s_exit).load(cuda::memory_order_acquire) &&
				    cta_u32(*s_tail).load(cuda::memory_order_acquire) == h) {
					t = h - 1; /* "exit" */
					break;
				}
			}
			*s_avail = t;
			unsigned long long now = now_ns();
			starve += now - busy_until;
			stretches++;
		}
		/* the barrier passes ctid 0's acquire on to every compute thread */
		gpuos_sync();
		uint32_t end = *s_avail;
		if (end == h - 1) {
			if (ctid == 0) {
				/* the fetcher wrote its counters before s_exit (acquired above) */
				p.sh->sh_prof[GPUOS_PROF_STRETCHES] += stretches - 1;
				p.sh->sh_prof[GPUOS_PROF_STARVE_NS] += starve;
				p.sh->sh_prof[GPUOS_PROF_GATE_NS] += gate_ns;
			}
			return;
		}

		uint32_t flushed = h; /* entries before it are reported done */
		/* The task header (seq, op|slot, gate, tseq) rides in registers: the next one
		 * is loaded before the barrier, so no dependent shared-memory load sits on the
		 * per-task path. */
		uint4 hdr = ((const uint4 *)&q[h % QN])[0];
		for (uint32_t i = h; i != end;) {
			const struct gpuos_task *t = &q[i % QN];
			const uint32_t op = hdr.y & 0xffff, slot = hdr.y >> 16, gate = hdr.z;
			uint32_t r = 1;

			if (gate) {
				if (ctid == 0) {
					unsigned long long g0 = now_ns();
					/* what ran before is reported first: this batch's go may wait
					 * for it (a stream waiting on another's event) */
					flush_done(p, q, flushed, i);
					/* acquire: pairs with the stream's cuStreamWriteValue32 at
					 * batch open (its default flags order the stream's earlier
					 * writes before it) */
					uint32_t seen = ld_acquire_sys(&p.go[slot]);
					if ((int32_t)(seen - gate) < 0) {
						/* for gpuos_debug_dump: what we wait for */
						st_relaxed_sys(&p.sh->sh_wait_slot, slot);
						st_relaxed_sys(&p.sh->sh_wait_gate, gate);
						st_relaxed_sys(&p.sh->sh_wait_go, seen);
						st_relaxed_sys(&p.sh->sh_wait_on, 1);
						while ((int32_t)(ld_acquire_sys(&p.go[slot]) - gate) < 0)
							;
						st_relaxed_sys(&p.sh->sh_wait_on, 0);
					}
					gate_ns += now_ns() - g0;
				}
				flushed = i;
				gpuos_sync();
			}
			if (op < GPUOS_BUILTIN_OPS) {
				struct gpuos_task tk;
				((uint4 *)&tk)[0] = hdr;
				for (int w = 1; w < 4; w++)
					((uint4 *)&tk)[w] = ((const uint4 *)t)[w];
				run_builtin(&tk);
			} else {
				/* a run of the same operator, contiguous in the queue array */
				while (i + r != end && (i + r) % QN != 0 && q[(i + r) % QN].op == op &&
				       !q[(i + r) % QN].gate)
					r++;
				/* relaxed at device scope: bypasses L1, so a slot the host rewrote
				 * since an earlier run is read fresh (the host wrote it before
				 * publishing the task that names it) */
				uint64_t *e = (uint64_t *)&gpuos_op_table[op - GPUOS_BUILTIN_OPS];
				gpuos_op_fn fn = (gpuos_op_fn)cuda::atomic_ref<uint64_t,
						cuda::thread_scope_device>(*e).load(cuda::memory_order_relaxed);
				if ((uint64_t)fn == 1)
					(void)stack_reserve(ctid);
				else if (fn)
					fn(t, (int)r, gpuos_window);
			}
			i += r;
			hdr = i != end ? ((const uint4 *)&q[i % QN])[0] : make_uint4(0, 0, 0, 0);
			/* The next task sees this one's writes if it is of the same stream, or
			 * gated (its go may follow a done we report), or the stretch ends (done
			 * is reported). Tasks of other streams do not depend on this one:
			 * anything that orders two streams goes through a batch's go. */
			if (i == end || hdr.z || (hdr.y >> 16) == slot || op >= GPUOS_BUILTIN_OPS)
				gpuos_sync();
		}
		if (ctid == 0)
			flush_done(p, q, flushed, end);
		h = end;
		if (ctid == 0) {
			/* release: our reads of the queue entries are done (last barrier);
			 * pairs with the fetcher's acquire of s_head */
			cta_u32(*s_head).store(h, cuda::memory_order_release);
			/* relaxed: the host reads sh_done to know that the tasks' code has run
			 * (operator retirement, restarts, arena reuse), not their data */
			st_relaxed_sys(&p.sh->sh_done, base + h);
			/* Nothing more queued: the worker is about to wait, the host is ahead
			 * of it, and a batch close may come before the next task. Release at
			 * system scope: the tasks' writes (last barrier) before sh_done_sys;
			 * pairs with the host's acquire in gpuos_ring_done_sys. Skipped while
			 * tasks keep coming, where a close would find its tasks unfinished
			 * anyway and the fence would cost every stretch. */
			if (cta_u32(*s_tail).load(cuda::memory_order_relaxed) == h)
				st_release_sys(&p.sh->sh_done_sys, base + h);
			busy_until = now_ns();
		}
	}
}

extern "C" __global__ void __launch_bounds__(1024, 1) gpuos_worker(struct gpuos_worker_params p)
{
	__shared__ __align__(16) struct gpuos_task q[QN];
	__shared__ __align__(16) unsigned char pb[QN * PSLOT + 16];
	__shared__ uint32_t s_tail, s_head, s_exit, s_avail, s_base;

	if (threadIdx.x == 0) {
		s_tail = s_head = s_exit = 0;
		/* acquire: the previous worker's last sh_head store (it finished before we
		 * started): the ring position of queue entry 0 */
		s_base = ld_acquire_sys(&p.sh->sh_head);
		st_release_sys(&p.sh->sh_state, GPUOS_WORKER_RUNNING);
	}
	__syncthreads(); /* the only block-wide barrier: the counters are set */
	/* Never runs (idle_ns is never 0): makes the kernel hold all 16 hardware barriers,
	 * which are a per-kernel resource; lifted kernels' barriers are 2..15 (ptx_lift). */
	if (p.idle_ns == 0 && threadIdx.x == 1024)
		asm volatile("bar.sync 15, 32;" ::: "memory");
	if (threadIdx.x < 32 * GPUOS_FETCH_WARPS)
		fetch_loop(p, q, pb, s_base, &s_tail, &s_head, &s_exit);
	else
		compute_loop(p, q, s_base, &s_tail, &s_head, &s_exit, &s_avail);
}
