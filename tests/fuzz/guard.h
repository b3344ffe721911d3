// SPDX-License-Identifier: MIT
/*
 * The input copied so that its last byte is the last byte of a page and the next page is
 * PROT_NONE. ASan does not see reads that libc makes on its own (sscanf's strlen, strtoul),
 * and libFuzzer's buffer usually has readable bytes after it: here any read past the end
 * faults at once, whatever reads it. One mapping, grown as needed, kept between runs.
 */
#ifndef GPUOS_FUZZ_GUARD_H
#define GPUOS_FUZZ_GUARD_H

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const uint8_t *gpuos_fuzz_guard(const uint8_t *data, size_t size)
{
	static uint8_t *map;
	static size_t span; /* readable bytes in front of the guard page */
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	if (!map || size > span) {
		size_t want = (size + pg - 1) / pg * pg;
		uint8_t *m = mmap(NULL, want + pg, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED || mprotect(m + want, pg, PROT_NONE))
			__builtin_trap();
		if (map)
			munmap(map, span + pg);
		map = m;
		span = want;
	}
	if (size)
		memcpy(map + span - size, data, size);
	return map + span - size;
}

#endif
