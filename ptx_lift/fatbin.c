// SPDX-License-Identifier: MIT
/*
 * The fatbinary container. Layout (little endian, checked on nvcc 13.0 output):
 *
 *   header  (16 bytes): u32 magic 0xBA55ED50, u16 version (1), u16 header size,
 *                       u64 size of everything after the header
 *   entries, back to back, each:
 *     0  u16 kind (1 PTX, 2 ELF)      2  u16 0x0101
 *     4  u32 entry header size        8  u64 payload size as stored (8-byte padded)
 *    16  u32 compressed size          20  u32 offset of the ptxas-options pair, 0 if none
 *    24  u16 minor, u16 major         28  u32 arch (75, 90, 120)
 *    32  u32 name offset, u32 len     40  u64 flags (0x2000 LZ4, 0x8000 ZSTD,
 *                                             0x100000 sm_XXa, 0x200000 sm_XXf)
 *    48  u64 zero                     56  u64 decompressed size
 *     entry header size bytes later: the payload.
 *
 * Only headers are read until a payload is asked for: libtorch_cuda.so carries hundreds of
 * ZSTD entries and the shim picks one of them per kernel.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fatbinary_section.h>
#include <lz4.h>
#include <zstd.h>

#include "ptx_lift/ptx_lift.h"

#define FATBIN_MAGIC	  0xBA55ED50u
#define FATBIN_HDR_SIZE	  16u
#define FATBIN_ENTRY_SIZE 64u
#define FATBIN_KIND_PTX	  1u
#define FATBIN_KIND_ELF	  2u
#define FATBIN_FL_LZ4	  0x2000ull
#define FATBIN_FL_ZSTD	  0x8000ull
#define FATBIN_FL_ARCH_A  0x100000ull
#define FATBIN_FL_ARCH_F  0x200000ull
/* Bound on a decompressed payload: refuse absurd sizes before malloc'ing them. */
#define FATBIN_MAX_RAW (1ull << 30)
/* An LZ4 block cannot expand its input by more than this factor. */
#define LZ4_MAX_RATIO 255ull

struct fatbin_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t hdr_size;
	uint64_t size;
};

struct fatbin_entry_hdr {
	uint16_t kind;
	uint16_t unknown;
	uint32_t hdr_size;
	uint64_t size;
	uint32_t compressed_size;
	uint32_t options_offset;
	uint16_t minor;
	uint16_t major;
	uint32_t arch;
	uint32_t name_offset;
	uint32_t name_len;
	uint64_t flags;
	uint64_t zero;
	uint64_t raw_size;
};

_Static_assert(sizeof(struct fatbin_hdr) == FATBIN_HDR_SIZE, "fatbin header layout");
_Static_assert(sizeof(struct fatbin_entry_hdr) == FATBIN_ENTRY_SIZE, "entry header layout");

/* Header fields read with memcpy: fatbins inside a file need not be aligned. */
static int fatbin_read_hdr(const void *buf, size_t len, struct fatbin_hdr *h, size_t *total)
{
	if (!buf || len < FATBIN_HDR_SIZE)
		return -EINVAL;
	memcpy(h, buf, sizeof(*h));
	if (h->magic != FATBIN_MAGIC || h->hdr_size < FATBIN_HDR_SIZE)
		return -EINVAL;
	/* ssize_t must be able to carry the total back to the caller. */
	if (h->size > (uint64_t)SSIZE_MAX - h->hdr_size)
		return -EINVAL;
	*total = (size_t)(h->hdr_size + h->size);
	return 0;
}

ssize_t gpuos_fatbin_size(const void *buf, size_t len)
{
	struct fatbin_hdr h;
	size_t total;
	int ret;

	ret = fatbin_read_hdr(buf, len, &h, &total);
	if (ret)
		return ret;
	if (total > len)
		return -EINVAL;
	return (ssize_t)total;
}

int gpuos_fatbin_from_wrapper(const void *wrapper, const void **fatbin, size_t *len)
{
	__fatBinC_Wrapper_t w;
	struct fatbin_hdr h;
	size_t total;
	int ret;

	if (!wrapper || !fatbin || !len)
		return -EINVAL;
	memcpy(&w, wrapper, sizeof(w));
	if ((uint32_t)w.magic != FATBINC_MAGIC)
		return -EINVAL;
	if (w.version != FATBINC_VERSION && w.version != FATBINC_LINK_VERSION)
		return -ENOTSUP;
	if (!w.data)
		return -EINVAL;
	/*
	 * The wrapper is the running program's own memory, so the fatbin it points at is
	 * mapped in full; only its header tells how long it is.
	 */
	ret = fatbin_read_hdr(w.data, FATBIN_HDR_SIZE, &h, &total);
	if (ret)
		return ret;
	*fatbin = w.data;
	*len = total;
	return 0;
}

int gpuos_fatbin_next(const void *buf, size_t len, size_t *pos, struct gpuos_fatbin_entry *e)
{
	const unsigned char *p = buf;
	struct fatbin_entry_hdr eh;
	struct fatbin_hdr h;
	size_t total, off, room, data_len;
	uint64_t comp;
	int ret;

	if (!pos || !e)
		return -EINVAL;
	ret = fatbin_read_hdr(buf, len, &h, &total);
	if (ret)
		return ret;
	if (total > len)
		return -EINVAL;
	off = *pos ? *pos : h.hdr_size;
	if (off < h.hdr_size)
		return -EINVAL;

	for (;;) {
		if (off >= total)
			return 0;
		room = total - off;
		if (room < FATBIN_ENTRY_SIZE)
			return -EINVAL;
		memcpy(&eh, p + off, sizeof(eh));
		if (eh.hdr_size < FATBIN_ENTRY_SIZE || eh.hdr_size > room ||
		    eh.size > room - eh.hdr_size)
			return -EINVAL;
		*pos = off + eh.hdr_size + (size_t)eh.size;

		if (eh.kind != FATBIN_KIND_PTX && eh.kind != FATBIN_KIND_ELF) {
			off = *pos;
			continue;
		}
		comp = eh.flags & (FATBIN_FL_LZ4 | FATBIN_FL_ZSTD);
		data_len = (size_t)eh.size;
		memset(e, 0, sizeof(*e));
		e->kind = eh.kind == FATBIN_KIND_PTX ? GPUOS_FATBIN_PTX : GPUOS_FATBIN_CUBIN;
		e->arch = eh.arch;
		if (eh.flags & FATBIN_FL_ARCH_A)
			e->flags |= GPUOS_FATBIN_F_ARCH_SPECIFIC;
		if (eh.flags & FATBIN_FL_ARCH_F)
			e->flags |= GPUOS_FATBIN_F_FAMILY;
		if (comp == (FATBIN_FL_LZ4 | FATBIN_FL_ZSTD))
			return -ENOTSUP;
		if (comp) {
			/* The stored payload is padded to 8 bytes; the exact length is here. */
			if (!eh.compressed_size || eh.compressed_size > eh.size || !eh.raw_size)
				return -EINVAL;
			data_len = eh.compressed_size;
			e->flags |=
			    comp == FATBIN_FL_LZ4 ? GPUOS_FATBIN_F_LZ4 : GPUOS_FATBIN_F_ZSTD;
			e->raw_len = (size_t)eh.raw_size;
			if (eh.raw_size > FATBIN_MAX_RAW)
				return -EINVAL;
		} else {
			e->raw_len = data_len;
		}
		e->data = p + off + eh.hdr_size;
		e->data_len = data_len;
		return 1;
	}
}

/*
 * Is @e usable on a device of compute capability @sm? sm_XXa entries run on that exact
 * arch only; the kind-specific rule (same major for cubins) is the caller's.
 */
static bool fatbin_arch_ok(const struct gpuos_fatbin_entry *e, unsigned sm)
{
	if (e->arch > sm)
		return false;
	if ((e->flags & GPUOS_FATBIN_F_ARCH_SPECIFIC) && e->arch != sm)
		return false;
	return true;
}

int gpuos_fatbin_pick(const void *buf, size_t len, unsigned kind, unsigned sm,
		      struct gpuos_fatbin_entry *e)
{
	struct gpuos_fatbin_entry cur, best;
	bool found = false;
	size_t pos = 0;
	int ret;

	if (!e || (kind != GPUOS_FATBIN_PTX && kind != GPUOS_FATBIN_CUBIN))
		return -EINVAL;
	while ((ret = gpuos_fatbin_next(buf, len, &pos, &cur)) == 1) {
		if (cur.kind != kind || !fatbin_arch_ok(&cur, sm))
			continue;
		if (kind == GPUOS_FATBIN_CUBIN && cur.arch / 10 != sm / 10)
			continue;
		/* Newest wins; among equals the first, as the driver does. */
		if (!found || cur.arch > best.arch) {
			best = cur;
			found = true;
			if (kind == GPUOS_FATBIN_CUBIN && cur.arch == sm)
				break;
		}
	}
	if (ret < 0)
		return ret;
	if (!found)
		return -ENOENT;
	*e = best;
	return 0;
}

static int fatbin_check_payload(unsigned kind, const unsigned char *p, size_t n)
{
	/* A cubin is an ELF; PTX is text, so a NUL or ELF magic means we decoded garbage. */
	if (kind == GPUOS_FATBIN_CUBIN)
		return n >= 4 && !memcmp(p,
					 "\x7f"
					 "ELF",
					 4)
			   ? 0
			   : -EINVAL;
	if (kind == GPUOS_FATBIN_PTX)
		return n && p[0] != '\0' && p[0] != 0x7f ? 0 : -EINVAL;
	return -ENOTSUP;
}

int gpuos_fatbin_payload(const struct gpuos_fatbin_entry *e, void **out, size_t *out_len)
{
	unsigned char *dst = NULL;
	size_t raw, n;
	int ret;

	if (!e || !out || !out_len || !e->data)
		return -EINVAL;
	*out = NULL;
	*out_len = 0;
	raw = (e->flags & (GPUOS_FATBIN_F_LZ4 | GPUOS_FATBIN_F_ZSTD)) ? e->raw_len : e->data_len;
	if (!raw || raw > FATBIN_MAX_RAW)
		return -EINVAL;

	if (e->flags & GPUOS_FATBIN_F_LZ4) {
		if (e->data_len > INT32_MAX || raw > e->data_len * LZ4_MAX_RATIO + 64)
			return -EINVAL;
	} else if (e->flags & GPUOS_FATBIN_F_ZSTD) {
		unsigned long long fcs = ZSTD_getFrameContentSize(e->data, e->data_len);

		if (fcs == ZSTD_CONTENTSIZE_ERROR)
			return -EINVAL;
		/* nvcc records the size in the frame too; a mismatch is a corrupt entry. */
		if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != raw)
			return -EINVAL;
	}

	/* One spare byte: PTX is handed out NUL-terminated. */
	dst = malloc(raw + 1);
	if (!dst)
		return -ENOMEM;

	if (e->flags & GPUOS_FATBIN_F_LZ4) {
		int r = LZ4_decompress_safe(e->data, (char *)dst, (int)e->data_len,
					    raw > INT32_MAX ? INT32_MAX : (int)raw);

		if (r < 0 || (size_t)r != raw) {
			ret = -EINVAL;
			goto out;
		}
	} else if (e->flags & GPUOS_FATBIN_F_ZSTD) {
		n = ZSTD_decompress(dst, raw, e->data, e->data_len);
		if (ZSTD_isError(n) || n != raw) {
			ret = -EINVAL;
			goto out;
		}
	} else {
		memcpy(dst, e->data, raw);
	}
	dst[raw] = '\0';

	ret = fatbin_check_payload(e->kind, dst, raw);
	if (ret)
		goto out;
	if (e->kind == GPUOS_FATBIN_PTX) {
		/* Stored PTX may carry trailing NULs of padding: they are not text. */
		raw = strnlen((const char *)dst, raw);
	}
	*out = dst;
	*out_len = raw;
	dst = NULL;
out:
	free(dst);
	return ret;
}
