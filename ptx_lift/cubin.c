// SPDX-License-Identifier: MIT
/*
 * A cubin (device ELF, EM_CUDA): its kernels and what a launch needs to know about them.
 *
 * Kernels are FUNC symbols marked STO_CUDA_ENTRY (or owning a .nv.info.<name> section).
 * Per-kernel facts live in .nv.info.<name> (parameter layout, launch bounds, hazards), the
 * per-function ones of the whole cubin in .nv.info (registers, frame size), keyed by symbol
 * index. Attribute records: u8 format, u8 attribute, then
 *   format 1 (no value) / 2 (byte) / 3 (u16): 2 more bytes, 4 in all;
 *   format 4: u16 size, then size bytes.
 * Sections of a kernel (.nv.info.<k>, .nv.shared.<k>) name its .text.<k> in sh_info, which
 * lets us index them in one pass instead of comparing names (cubins of libtorch carry
 * thousands of kernels).
 */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ptx_lift/ptx_lift.h"

#ifndef EM_CUDA
#define EM_CUDA 190
#endif
#define STO_CUDA_ENTRY 0x10

/* .nv.info formats and the attributes we read (ids as nvdisasm names them). */
#define EIFMT_NVAL 1
#define EIFMT_BVAL 2
#define EIFMT_HVAL 3
#define EIFMT_SVAL 4

#define EIATTR_MAX_THREADS		0x05
#define EIATTR_PARAM_CBANK		0x0a
#define EIATTR_REQNTID			0x10
#define EIATTR_FRAME_SIZE		0x11
#define EIATTR_KPARAM_INFO		0x17
#define EIATTR_CBANK_PARAM_SIZE		0x19
#define EIATTR_COOP_GROUP_INSTR_OFFSETS 0x28
#define EIATTR_COOP_GROUP_MASK_REGIDS	0x29
#define EIATTR_REGCOUNT			0x2f
#define EIATTR_CTA_PER_CLUSTER		0x3d
#define EIATTR_EXPLICIT_CLUSTER		0x3e
#define EIATTR_MAX_CLUSTER_RANK		0x3f
#define EIATTR_TCGEN05_2CTA_USED	0x52

/* sm_90 and later put the 1 KiB of system-reserved shared memory in each kernel's section. */
#define RESERVED_SMEM_SM90 1024u
/* A parameter buffer is at most 32 KiB (CUDA 12.1+); anything larger is corrupt. */
#define MAX_PARAM_BYTES 32768u

struct gpuos_cubin {
	void *image; /* private copy: libelf and the kernel names point into it */
	Elf *elf;
	unsigned arch;
	unsigned count;
	struct gpuos_kinfo *kernels;
	struct gpuos_kparam *params; /* every kernel's parameters, kernels[i].params inside */
	unsigned frames;	     /* every function's stack frame, added up */
	unsigned cbanks;	     /* bit n: a .nv.constant<n> section (bank n's data) */
};

/* Per-kernel scratch while parsing. */
struct cubin_kscratch {
	size_t sym;    /* symbol index */
	size_t text;   /* section index of .text.<name> */
	size_t info;   /* section index of .nv.info.<name>, 0 if none */
	size_t shared; /* section index of .nv.shared.<name>, 0 if none */
};

static pthread_once_t cubin_elf_once = PTHREAD_ONCE_INIT;
static int cubin_elf_ok;

static void cubin_elf_init(void)
{
	cubin_elf_ok = elf_version(EV_CURRENT) != EV_NONE;
}

static uint32_t rd32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint16_t rd16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Walk the attribute records of one .nv.info section. Calls fn for every record with its
 * value bytes (the 2 inline bytes for formats 1-3). Returns 0 or -EINVAL.
 */
typedef int (*cubin_attr_fn)(unsigned attr, const unsigned char *val, size_t len, void *arg);

static int cubin_walk_attrs(const unsigned char *p, size_t len, cubin_attr_fn fn, void *arg)
{
	size_t off = 0, vlen;
	int ret;

	while (off < len) {
		if (len - off < 4)
			return -EINVAL;
		switch (p[off]) {
		case EIFMT_NVAL:
		case EIFMT_BVAL:
		case EIFMT_HVAL:
			vlen = 2;
			break;
		case EIFMT_SVAL:
			vlen = rd16(p + off + 2);
			if (vlen > len - off - 4)
				return -EINVAL;
			ret = fn(p[off + 1], p + off + 4, vlen, arg);
			if (ret)
				return ret;
			off += 4 + vlen;
			continue;
		default:
			return -EINVAL;
		}
		ret = fn(p[off + 1], p + off + 2, vlen, arg);
		if (ret)
			return ret;
		off += 4;
	}
	return 0;
}

/* ---- per-kernel .nv.info.<name> ---- */

struct cubin_kattr_ctx {
	struct gpuos_kinfo *k;
	struct gpuos_kparam *params; /* room for max_params */
	unsigned max_params;
	unsigned nparams;
	bool have_cbank;
};

static unsigned cubin_dims_product(const unsigned char *v, size_t len)
{
	uint64_t n = 1;

	if (len < 12)
		return 0;
	for (int i = 0; i < 3; i++)
		n *= rd32(v + 4 * i);
	return n > UINT32_MAX ? UINT32_MAX : (unsigned)n;
}

static int cubin_count_kparams(unsigned attr, const unsigned char *val, size_t len, void *arg)
{
	(void)val;
	(void)len;
	if (attr == EIATTR_KPARAM_INFO)
		(*(unsigned *)arg)++;
	return 0;
}

static int cubin_kattr(unsigned attr, const unsigned char *v, size_t len, void *arg)
{
	struct cubin_kattr_ctx *c = arg;
	struct gpuos_kinfo *k = c->k;
	uint32_t bits;

	switch (attr) {
	case EIATTR_KPARAM_INFO:
		/* u32 index, u16 ordinal, u16 offset, u32: size in bytes in bits 18-31 */
		if (len < 12 || c->nparams >= c->max_params)
			return -EINVAL;
		bits = rd32(v + 8);
		c->params[c->nparams].ordinal = rd16(v + 4);
		c->params[c->nparams].offset = rd16(v + 6);
		c->params[c->nparams].size = bits >> 18;
		c->nparams++;
		break;
	case EIATTR_PARAM_CBANK:
		/* u32 symbol of .nv.constant0.<name>, u16 offset in the bank, u16 size */
		if (len < 8)
			return -EINVAL;
		k->param_bytes = rd16(v + 6);
		c->have_cbank = true;
		break;
	case EIATTR_CBANK_PARAM_SIZE:
		if (!c->have_cbank)
			k->param_bytes = rd16(v);
		break;
	case EIATTR_MAX_THREADS:
	case EIATTR_REQNTID:
		/* x, y, z; REQNTID is the stricter of the two but both bound the block */
		if (len < 12)
			return -EINVAL;
		if (!k->max_threads || attr == EIATTR_REQNTID)
			k->max_threads = cubin_dims_product(v, len);
		break;
	case EIATTR_COOP_GROUP_INSTR_OFFSETS:
	case EIATTR_COOP_GROUP_MASK_REGIDS:
		k->flags |= GPUOS_KI_COOP;
		break;
	case EIATTR_CTA_PER_CLUSTER:
	case EIATTR_EXPLICIT_CLUSTER:
	case EIATTR_MAX_CLUSTER_RANK:
	case EIATTR_TCGEN05_2CTA_USED:
		k->flags |= GPUOS_KI_CLUSTER;
		break;
	default:
		break;
	}
	return 0;
}

static int cubin_cmp_param(const void *a, const void *b)
{
	const struct gpuos_kparam *x = a, *y = b;

	return (x->ordinal > y->ordinal) - (x->ordinal < y->ordinal);
}

/* Check the layout once here so that callers can trust it: ordinals 0..n-1, in the buffer. */
static int cubin_check_params(const struct gpuos_kinfo *k)
{
	for (unsigned i = 0; i < k->nparams; i++) {
		const struct gpuos_kparam *p = &k->params[i];

		if (p->ordinal != i || !p->size)
			return -EINVAL;
		if ((uint64_t)p->offset + p->size > k->param_bytes)
			return -EINVAL;
	}
	return k->param_bytes <= MAX_PARAM_BYTES ? 0 : -EINVAL;
}

/* ---- global .nv.info ---- */

struct cubin_gattr_ctx {
	struct gpuos_cubin *c;
	const uint32_t *sym2k; /* symbol index -> kernel index + 1, 0 if not a kernel */
	size_t nsyms;
};

static int cubin_gattr(unsigned attr, const unsigned char *v, size_t len, void *arg)
{
	struct cubin_gattr_ctx *g = arg;
	struct gpuos_kinfo *k;
	uint32_t sym;

	if (attr != EIATTR_REGCOUNT && attr != EIATTR_FRAME_SIZE)
		return 0;
	/* u32 symbol index, u32 value */
	if (len < 8)
		return -EINVAL;
	sym = rd32(v);
	if (attr == EIATTR_FRAME_SIZE) /* saturating */
		g->c->frames = rd32(v + 4) > UINT32_MAX - g->c->frames ? UINT32_MAX
									 : g->c->frames + rd32(v + 4);
	if (sym >= g->nsyms || !g->sym2k[sym])
		return 0; /* a device function, not a kernel */
	k = &g->c->kernels[g->sym2k[sym] - 1];
	if (attr == EIATTR_REGCOUNT)
		k->regs = rd32(v + 4) > 255 ? 255 : (int)rd32(v + 4);
	else
		k->local_bytes = rd32(v + 4);
	return 0;
}

/* ---- the ELF ---- */

static int cubin_section_bytes(Elf_Scn *scn, const unsigned char **p, size_t *len)
{
	Elf_Data *d = elf_rawdata(scn, NULL);

	if (!d)
		return -EINVAL;
	*p = d->d_buf;
	*len = d->d_buf ? d->d_size : 0;
	return 0;
}

static unsigned cubin_arch_of(const GElf_Ehdr *eh)
{
	/*
	 * CUDA 13 cubins (ELF OS/ABI 0x41, ABI version 8) keep the SM in bits 8-15 of e_flags
	 * (sm_75: 0x6004b04, sm_90: 0x6005a04, sm_120: 0x6007802); older ones in bits 0-7
	 * (EF_CUDA_SM), with the virtual arch in bits 16-23.
	 */
	if (eh->e_ident[EI_ABIVERSION] >= 8 || eh->e_ident[EI_OSABI] == 0x41)
		return (eh->e_flags >> 8) & 0xff;
	return eh->e_flags & 0xff;
}

/*
 * A FUNC symbol without STO_CUDA_ENTRY (older producers) is a kernel when it owns its
 * .text.<name> section and that has a .nv.info.<name>: helpers such as sm_70's
 * $__internal_0_$__cuda_sm70_barrier_sync_0 share their caller's section and are not.
 */
static bool cubin_is_kernel_text(struct gpuos_cubin *c, const GElf_Sym *s, size_t strtab,
				 size_t shstrndx, size_t info)
{
	const char *name, *sname;
	GElf_Shdr sh;

	if (!info || !gelf_getshdr(elf_getscn(c->elf, s->st_shndx), &sh))
		return false;
	name = elf_strptr(c->elf, strtab, s->st_name);
	sname = elf_strptr(c->elf, shstrndx, sh.sh_name);
	return name && sname && !strncmp(sname, ".text.", 6) && !strcmp(sname + 6, name);
}

static int cubin_parse(struct gpuos_cubin *c, size_t len)
{
	struct cubin_kscratch *ks = NULL;
	size_t shnum, shstrndx, nsyms = 0, symtab = 0, strtab = 0, ginfo = 0;
	size_t *info_of = NULL, *shared_of = NULL;
	uint32_t *sym2k = NULL;
	bool has_reserved = false;
	Elf_Data *symdata = NULL;
	unsigned nk = 0, total_params = 0;
	GElf_Ehdr eh;
	Elf_Scn *scn;
	int ret = -EINVAL;

	c->elf = elf_memory(c->image, len);
	if (!c->elf || elf_kind(c->elf) != ELF_K_ELF || gelf_getclass(c->elf) != ELFCLASS64)
		goto out;
	if (!gelf_getehdr(c->elf, &eh) || eh.e_machine != EM_CUDA)
		goto out;
	c->arch = cubin_arch_of(&eh);
	if (elf_getshdrnum(c->elf, &shnum) || elf_getshdrstrndx(c->elf, &shstrndx))
		goto out;

	info_of = calloc(shnum ? shnum : 1, sizeof(*info_of));
	shared_of = calloc(shnum ? shnum : 1, sizeof(*shared_of));
	if (!info_of || !shared_of) {
		ret = -ENOMEM;
		goto out;
	}

	/* One pass over the sections: the symbol table and each kernel's companions. */
	for (scn = NULL; (scn = elf_nextscn(c->elf, scn));) {
		size_t idx = elf_ndxscn(scn);
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			goto out;
		name = elf_strptr(c->elf, shstrndx, sh.sh_name);
		if (!name)
			continue;
		if (sh.sh_type == SHT_SYMTAB && !symtab) {
			symtab = idx;
			strtab = sh.sh_link;
		} else if (!strcmp(name, ".nv.info")) {
			ginfo = idx;
		} else if (!strncmp(name, ".nv.info.", 9)) {
			if (sh.sh_info && sh.sh_info < shnum)
				info_of[sh.sh_info] = idx;
		} else if (!strncmp(name, ".nv.constant", 12)) {
			char *end;
			unsigned long bank = strtoul(name + 12, &end, 10);

			if (end != name + 12 && bank < 32)
				c->cbanks |= 1u << bank;
		} else if (!strncmp(name, ".nv.shared.reserved.", 20)) {
			has_reserved = true;
		} else if (!strncmp(name, ".nv.shared.", 11)) {
			if (sh.sh_info && sh.sh_info < shnum)
				shared_of[sh.sh_info] = idx;
		}
	}
	if (!symtab) {
		ret = 0; /* no symbols, no kernels */
		goto out;
	}
	symdata = elf_getdata(elf_getscn(c->elf, symtab), NULL);
	if (!symdata)
		goto out;
	{
		GElf_Shdr sh;

		if (!gelf_getshdr(elf_getscn(c->elf, symtab), &sh) || !sh.sh_entsize)
			goto out;
		nsyms = symdata->d_size / sizeof(Elf64_Sym);
	}

	ks = calloc(nsyms ? nsyms : 1, sizeof(*ks));
	sym2k = calloc(nsyms ? nsyms : 1, sizeof(*sym2k));
	if (!ks || !sym2k) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 1; i < nsyms; i++) {
		GElf_Sym s;

		if (!gelf_getsym(symdata, (int)i, &s))
			goto out;
		if (GELF_ST_TYPE(s.st_info) != STT_FUNC) {
			const char *name = elf_strptr(c->elf, strtab, s.st_name);

			/* sm_90+: the reserved KiB is in every shared section that uses it. */
			if (name && !strncmp(name, ".nv.reservedSmem", 16))
				has_reserved = true;
			continue;
		}
		if (s.st_shndx == SHN_UNDEF || s.st_shndx >= shnum || s.st_shndx >= SHN_LORESERVE)
			continue;
		if (!(s.st_other & STO_CUDA_ENTRY) &&
		    !cubin_is_kernel_text(c, &s, strtab, shstrndx, info_of[s.st_shndx]))
			continue;
		ks[nk].sym = i;
		ks[nk].text = s.st_shndx;
		ks[nk].info = info_of[s.st_shndx];
		ks[nk].shared = shared_of[s.st_shndx];
		nk++;
		sym2k[i] = nk;
	}

	/* Count parameters first so that all of them fit in one allocation. */
	for (unsigned i = 0; i < nk; i++) {
		const unsigned char *p;
		size_t n;
		unsigned np = 0;

		if (!ks[i].info)
			continue;
		if (cubin_section_bytes(elf_getscn(c->elf, ks[i].info), &p, &n))
			goto out;
		ret = cubin_walk_attrs(p, n, cubin_count_kparams, &np);
		if (ret)
			goto out;
		ret = -EINVAL;
		if (np > MAX_PARAM_BYTES)
			goto out;
		total_params += np;
	}
	c->kernels = calloc(nk ? nk : 1, sizeof(*c->kernels));
	c->params = calloc(total_params ? total_params : 1, sizeof(*c->params));
	if (!c->kernels || !c->params) {
		ret = -ENOMEM;
		goto out;
	}

	total_params = 0;
	for (unsigned i = 0; i < nk; i++) {
		struct gpuos_kinfo *k = &c->kernels[i];
		struct cubin_kattr_ctx kc = {.k = k};
		unsigned np = 0;
		GElf_Sym s;

		if (!gelf_getsym(symdata, (int)ks[i].sym, &s))
			goto out;
		k->name = elf_strptr(c->elf, strtab, s.st_name);
		if (!k->name || !k->name[0])
			goto out;
		k->regs = -1;
		if (ks[i].shared) {
			GElf_Shdr sh;

			if (!gelf_getshdr(elf_getscn(c->elf, ks[i].shared), &sh) ||
			    sh.sh_size > UINT32_MAX)
				goto out;
			k->static_smem = (unsigned)sh.sh_size;
			/*
			 * What cudaFuncGetAttributes reports leaves the reserved KiB out. Only a
			 * linked cubin holds it; a relocatable one (-rdc prelink) gets it from
			 * nvlink.
			 */
			if (has_reserved && eh.e_type == ET_EXEC && c->arch >= 90 &&
			    k->static_smem >= RESERVED_SMEM_SM90)
				k->static_smem -= RESERVED_SMEM_SM90;
		}
		if (ks[i].info) {
			const unsigned char *p;
			size_t n;

			if (cubin_section_bytes(elf_getscn(c->elf, ks[i].info), &p, &n))
				goto out;
			ret = cubin_walk_attrs(p, n, cubin_count_kparams, &np);
			if (ret)
				goto out;
			kc.params = c->params + total_params;
			kc.max_params = np;
			ret = cubin_walk_attrs(p, n, cubin_kattr, &kc);
			if (ret)
				goto out;
			ret = -EINVAL;
		}
		if (kc.nparams)
			qsort(kc.params, kc.nparams, sizeof(*kc.params), cubin_cmp_param);
		k->params = kc.nparams ? kc.params : NULL;
		k->nparams = kc.nparams;
		total_params += kc.nparams;
		if (cubin_check_params(k))
			goto out;
	}
	c->count = nk;

	if (ginfo) {
		struct cubin_gattr_ctx g = {.c = c, .sym2k = sym2k, .nsyms = nsyms};
		const unsigned char *p;
		size_t n;

		if (cubin_section_bytes(elf_getscn(c->elf, ginfo), &p, &n))
			goto out;
		ret = cubin_walk_attrs(p, n, cubin_gattr, &g);
		if (ret)
			goto out;
	}
	ret = 0;
out:
	free(ks);
	free(sym2k);
	free(info_of);
	free(shared_of);
	return ret;
}

/*
 * libelf happily opens an image whose section headers lie past its end and reports no
 * sections: a truncated cubin would look like one without kernels. Check the table fits.
 */
static bool cubin_headers_fit(const void *buf, size_t len)
{
	uint64_t shnum, end;
	Elf64_Shdr sh0;
	Elf64_Ehdr eh;

	if (len < sizeof(eh) || memcmp(buf, ELFMAG, SELFMAG))
		return false;
	memcpy(&eh, buf, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) ||
	    !eh.e_shoff || eh.e_shoff > len || len - eh.e_shoff < sizeof(sh0))
		return false;
	shnum = eh.e_shnum;
	if (!shnum) {
		/* Extended numbering: the count is in section 0. */
		memcpy(&sh0, (const char *)buf + eh.e_shoff, sizeof(sh0));
		shnum = sh0.sh_size;
	}
	if (shnum > (len - eh.e_shoff) / sizeof(Elf64_Shdr))
		return false;
	end = eh.e_shoff + shnum * sizeof(Elf64_Shdr);
	if (end > len)
		return false;
	/* The driver loads by the program headers: a cubin cut inside them is no cubin. */
	if (eh.e_phnum && (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > len ||
			   eh.e_phnum > (len - eh.e_phoff) / sizeof(Elf64_Phdr)))
		return false;
	return true;
}

int gpuos_cubin_open(const void *buf, size_t len, struct gpuos_cubin **out)
{
	struct gpuos_cubin *c = NULL;
	int ret;

	if (!buf || !out)
		return -EINVAL;
	*out = NULL;
	if (!cubin_headers_fit(buf, len))
		return -EINVAL;
	pthread_once(&cubin_elf_once, cubin_elf_init);
	if (!cubin_elf_ok)
		return -ENOTSUP;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/* libelf may rewrite what it reads in place; the caller's buffer stays untouched. */
	c->image = malloc(len);
	if (!c->image) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(c->image, buf, len);
	ret = cubin_parse(c, len);
	if (ret)
		goto out;
	*out = c;
	c = NULL;
out:
	gpuos_cubin_close(c);
	return ret;
}

unsigned gpuos_cubin_frames(const struct gpuos_cubin *c)
{
	return c->frames;
}

unsigned gpuos_cubin_const_banks(const struct gpuos_cubin *c)
{
	return c->cbanks;
}

void gpuos_cubin_close(struct gpuos_cubin *c)
{
	if (!c)
		return;
	if (c->elf)
		elf_end(c->elf);
	free(c->kernels);
	free(c->params);
	free(c->image);
	free(c);
}

unsigned gpuos_cubin_arch(const struct gpuos_cubin *c)
{
	return c ? c->arch : 0;
}

unsigned gpuos_cubin_count(const struct gpuos_cubin *c)
{
	return c ? c->count : 0;
}

const struct gpuos_kinfo *gpuos_cubin_kernel(const struct gpuos_cubin *c, unsigned i)
{
	return c && i < c->count ? &c->kernels[i] : NULL;
}

const struct gpuos_kinfo *gpuos_cubin_find(const struct gpuos_cubin *c, const char *name)
{
	if (!c || !name)
		return NULL;
	for (unsigned i = 0; i < c->count; i++)
		if (!strcmp(c->kernels[i].name, name))
			return &c->kernels[i];
	return NULL;
}

int gpuos_cubin_from_fatbin(const void *buf, size_t len, unsigned sm, struct gpuos_cubin **out,
			    unsigned *arch)
{
	struct gpuos_fatbin_entry e;
	void *raw = NULL;
	size_t raw_len;
	int rc;

	*out = NULL;
	rc = gpuos_fatbin_pick(buf, len, GPUOS_FATBIN_CUBIN, sm, &e);
	if (rc)
		goto out;
	rc = gpuos_fatbin_payload(&e, &raw, &raw_len);
	if (rc)
		goto out;
	rc = gpuos_cubin_open(raw, raw_len, out);
	if (!rc && arch)
		*arch = e.arch;
out:
	free(raw);
	return rc;
}
