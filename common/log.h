/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_COMMON_LOG_H
#define GPUOS_COMMON_LOG_H

/*
 * Logging for a library that lives inside someone else's process: stderr only, prefix
 * "gpuos: ", no allocation, rate-limited, and safe against re-entry (a hook that logs while
 * logging drops the inner message instead of recursing).
 */
enum gpuos_log_level {
	GPUOS_LOG_OFF = -1,
	GPUOS_LOG_ERROR = 0,
	GPUOS_LOG_WARN = 1,
	GPUOS_LOG_INFO = 2,
	GPUOS_LOG_DEBUG = 3,
};

/* Messages above this level are dropped. Set by the config; GPUOS_LOG_WARN before that. */
extern int gpuos_log_level;

void gpuos_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse "off|error|warn|info|debug" or "0".."3"; returns the level or -EINVAL. */
int gpuos_log_parse_level(const char *s);

#define gpuos_err(...)	 gpuos_log(GPUOS_LOG_ERROR, __VA_ARGS__)
#define gpuos_warn(...)	 gpuos_log(GPUOS_LOG_WARN, __VA_ARGS__)
#define gpuos_info(...)	 gpuos_log(GPUOS_LOG_INFO, __VA_ARGS__)
#define gpuos_debug(...) gpuos_log(GPUOS_LOG_DEBUG, __VA_ARGS__)

#endif
