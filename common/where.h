/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_COMMON_WHERE_H
#define GPUOS_COMMON_WHERE_H

/*
 * Breadcrumbs for hangs: each thread says which blocking driver call of ours it is in, and
 * gpuos_debug_dump prints them (thread, what, for how long). A few stores per call; only on
 * calls that may wait (worker launches, parks, module loads, batch memops), never per task.
 */
#include <stdint.h>

/* Note that this thread is now in @what (a string literal) with @arg; NULL: in nothing. */
void gpuos_where(const char *what, unsigned arg);

/* Print every thread that is in something: "gpuos:   thread TID: WHAT ARG for N ms". */
void gpuos_where_dump(int fd);

#endif
