// SPDX-License-Identifier: MIT
/*
 * The fatbins of a host ELF (x86-64/aarch64 executable or shared library).
 *
 * Parsed by hand from the section headers rather than through libelf: the file may be a
 * read-only mapping of libtorch_cuda.so (over 1 GB), and only a few headers and the fatbin
 * headers are touched; nothing is copied.
 *
 * .nv_fatbin holds fatbins back to back. Each starts 8-byte aligned (the section is aligned
 * to 8 and every fatbin nvcc writes is a multiple of 8 long, seen on nvcc 13.0 output);
 * zero bytes between them are padding and are skipped whatever their length, so a larger
 * alignment costs nothing. __nv_relfatbin (-rdc=true) holds the fatbins before device
 * linking, in the same format.
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "ptx_lift/ptx_lift.h"

#define HOSTELF_FATBIN_MAGIC 0xBA55ED50u

struct hostelf_sec {
	uint64_t off;
	uint64_t size;
	int found;
};

static int hostelf_range_ok(uint64_t off, uint64_t size, size_t len)
{
	return off <= len && size <= len - off;
}

static int hostelf_read_shdr(const unsigned char *p, size_t len, const Elf64_Ehdr *eh, uint64_t i,
			     Elf64_Shdr *sh)
{
	uint64_t off;

	if (i > (UINT64_MAX - eh->e_shoff) / eh->e_shentsize)
		return -EINVAL;
	off = eh->e_shoff + i * eh->e_shentsize;
	if (!hostelf_range_ok(off, sizeof(*sh), len))
		return -EINVAL;
	memcpy(sh, p + off, sizeof(*sh));
	return 0;
}

/* Find .nv_fatbin and __nv_relfatbin. */
static int hostelf_find(const unsigned char *p, size_t len, struct hostelf_sec *fatbin,
			struct hostelf_sec *relfatbin)
{
	uint64_t shnum, shstrndx;
	Elf64_Shdr sh, strsh;
	Elf64_Ehdr eh;
	int ret;

	if (len < sizeof(eh) || memcmp(p, ELFMAG, SELFMAG))
		return -EINVAL;
	memcpy(&eh, p, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
		return -ENOTSUP;
	if (eh.e_shentsize < sizeof(Elf64_Shdr) || !eh.e_shoff)
		return -ENOENT;

	/* Extended numbering: the real counts live in section 0. */
	ret = hostelf_read_shdr(p, len, &eh, 0, &sh);
	if (ret)
		return ret;
	shnum = eh.e_shnum ? eh.e_shnum : sh.sh_size;
	shstrndx = eh.e_shstrndx == SHN_XINDEX ? sh.sh_link : eh.e_shstrndx;
	if (shstrndx >= shnum)
		return -EINVAL;
	ret = hostelf_read_shdr(p, len, &eh, shstrndx, &strsh);
	if (ret)
		return ret;
	if (!hostelf_range_ok(strsh.sh_offset, strsh.sh_size, len))
		return -EINVAL;

	for (uint64_t i = 1; i < shnum; i++) {
		struct hostelf_sec *s;
		const char *name;
		size_t room;

		ret = hostelf_read_shdr(p, len, &eh, i, &sh);
		if (ret)
			return ret;
		if (sh.sh_name >= strsh.sh_size)
			continue;
		name = (const char *)p + strsh.sh_offset + sh.sh_name;
		room = strsh.sh_size - sh.sh_name;
		if (room >= sizeof(".nv_fatbin") &&
		    !memcmp(name, ".nv_fatbin", sizeof(".nv_fatbin")))
			s = fatbin;
		else if (room >= sizeof("__nv_relfatbin") &&
			 !memcmp(name, "__nv_relfatbin", sizeof("__nv_relfatbin")))
			s = relfatbin;
		else
			continue;
		if (s->found)
			continue;
		s->found = 1;
		if (sh.sh_type == SHT_NOBITS)
			continue; /* stripped to nothing: no bytes to walk */
		if (!hostelf_range_ok(sh.sh_offset, sh.sh_size, len))
			return -EINVAL;
		s->off = sh.sh_offset;
		s->size = sh.sh_size;
	}
	return fatbin->found || relfatbin->found ? 0 : -ENOENT;
}

static int hostelf_walk(const unsigned char *p, size_t size,
			int (*fn)(const void *fatbin, size_t len, void *arg), void *arg)
{
	size_t off = 0;
	uint32_t magic;
	ssize_t n;
	int ret;

	while (off < size) {
		if (!p[off]) {
			off++;
			continue;
		}
		if (size - off < sizeof(magic))
			return -EINVAL;
		memcpy(&magic, p + off, sizeof(magic));
		if (magic != HOSTELF_FATBIN_MAGIC)
			return -EINVAL;
		n = gpuos_fatbin_size(p + off, size - off);
		if (n < 0)
			return (int)n;
		ret = fn(p + off, (size_t)n, arg);
		if (ret)
			return ret;
		off += (size_t)n;
	}
	return 0;
}

int gpuos_hostelf_for_each_fatbin(const void *buf, size_t len,
				  int (*fn)(const void *fatbin, size_t len, void *arg), void *arg)
{
	struct hostelf_sec fatbin = {0}, relfatbin = {0};
	const unsigned char *p = buf;
	int ret;

	if (!buf || !fn)
		return -EINVAL;
	ret = hostelf_find(p, len, &fatbin, &relfatbin);
	if (ret)
		return ret;
	if (fatbin.size) {
		ret = hostelf_walk(p + fatbin.off, (size_t)fatbin.size, fn, arg);
		if (ret)
			return ret;
	}
	if (relfatbin.size)
		ret = hostelf_walk(p + relfatbin.off, (size_t)relfatbin.size, fn, arg);
	return ret;
}
