/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_COMMON_ATOMICS_H
#define GPUOS_COMMON_ATOMICS_H

/*
 * Named host memory-ordering operations over C11 atomics. Every use of an acquire or release
 * says in a comment which operation on the other side it pairs with.
 */
#include <stdatomic.h>

#define load_relaxed(p)	    atomic_load_explicit((p), memory_order_relaxed)
#define store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define load_acquire(p)	    atomic_load_explicit((p), memory_order_acquire)
#define store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)

#endif
