/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_INTERPOSE_CONFIG_H
#define GPUOS_INTERPOSE_CONFIG_H

/*
 * The configuration: one static option table {name, type, default, help} (config.c), filled
 * from the config file, then from GPUOS_<NAME> environment variables, which override single
 * options. Allow/deny patterns are shell globs (fnmatch) on demangled kernel names.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPUOS_CFG_MAX_PATTERNS 256

struct gpuos_cfg {
	bool enable;	      /* divert at all; false = pure pass-through */
	int log_level;	      /* enum gpuos_log_level */
	char report[4096];    /* "" off, "1"/"stderr" table on stderr, else a .json path */
	uint64_t max_elements; /* largest launch diverted, in elements */
	uint64_t max_copy_bytes; /* largest device-to-device copy diverted */
	uint64_t reduce_max_threads; /* largest reduction diverted, grid x block threads */
	uint64_t max_blocks;
	uint64_t max_threads; /* per block */
	bool catalog;		  /* run the PyTorch kernels the catalog knows in the worker */
	bool lift;		  /* run kernels that ship PTX in the worker */
	uint64_t lift_max_threads; /* largest lifted launch, grid x block threads */
	char cache_dir[4096]; /* compiled operators; "" = $XDG_CACHE_HOME/gpuos */
	uint64_t jit_threads; /* operators compiled at once; 0 = by the CPU count */
	uint64_t workers;	 /* worker blocks (rings) a device */
	uint64_t worker_threads; /* threads a worker block */
	uint64_t worker_idle_ms; /* idle time before a worker exits */
	unsigned nallow, ndeny;
	char *allow[GPUOS_CFG_MAX_PATTERNS];
	char *deny[GPUOS_CFG_MAX_PATTERNS];
};

enum gpuos_cfg_verdict {
	GPUOS_CFG_DEFAULT = 0, /* no pattern says anything: the catalog decides */
	GPUOS_CFG_ALLOW = 1,
	GPUOS_CFG_DENY = 2,
};

/* Defaults from the option table. */
void gpuos_cfg_init(struct gpuos_cfg *cfg);
void gpuos_cfg_free(struct gpuos_cfg *cfg); /* frees patterns; NULL is fine */

/*
 * Parse config text (buf, len) named @source (for messages) into @cfg. On error returns
 * -EINVAL and writes "SOURCE:LINE: what is wrong" into err (errlen bytes).
 */
int gpuos_cfg_parse(struct gpuos_cfg *cfg, const void *buf, size_t len, const char *source,
		    char *err, size_t errlen);

/* Read and parse a file; -errno with "PATH: strerror" in err if unreadable. */
int gpuos_cfg_load_file(struct gpuos_cfg *cfg, const char *path, char *err, size_t errlen);

/*
 * Apply GPUOS_<NAME> overrides from @envp (NULL-terminated "K=V" list, e.g. environ).
 * Error message "GPUOS_NAME: what is wrong".
 */
int gpuos_cfg_apply_env(struct gpuos_cfg *cfg, char *const *envp, char *err, size_t errlen);

/*
 * The whole load as the shim does it: defaults, then the file ($GPUOS_CONFIG, else the
 * default path; a missing default file is not an error), then the environment. On any error:
 * -EINVAL, the one-line message in err, and @cfg left as defaults with enable = false.
 */
int gpuos_cfg_load(struct gpuos_cfg *cfg, char *const *envp, char *err, size_t errlen);

/* The default config path into buf ($XDG_CONFIG_HOME/gpuos/gpuos.conf or ~/.config/...). */
int gpuos_cfg_default_path(char *const *envp, char *buf, size_t len);

/*
 * What the patterns say of a demangled kernel name: DENY if a deny pattern matches, or if
 * allow patterns exist and none matches (an allowlist); ALLOW if an allow pattern matches;
 * DEFAULT when there are no patterns that speak to it.
 */
enum gpuos_cfg_verdict gpuos_cfg_match(const struct gpuos_cfg *cfg, const char *name);

/* Print the option table (name, type, default, help) for `gpuos config-check --help`. */
void gpuos_cfg_print_options(void *file);

#endif
