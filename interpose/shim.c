// SPDX-License-Identifier: MIT
/*
 * The shim's process-wide state: lazy, thread-safe initialisation (config, log level, fork
 * handlers) on the first hook call, and the report at exit.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "interpose/interpose.h"

extern char **environ;

struct gpuos_shim gpuos_shim;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
	gpuos_reg_lock(); /* no registration half done across fork */
}

static void fork_parent(void)
{
	gpuos_reg_unlock();
}

/* The child has no GPU context of the parent's; its report counts its own launches only. */
static void fork_child(void)
{
	gpuos_reg_unlock();
	gpuos_reg_reset_counts();
}

static void init_once_fn(void)
{
	char err[512];

	if (gpuos_cfg_load(&gpuos_shim.cfg, environ, err, sizeof(err))) {
		/* One line naming the file and line, then pure pass-through (config.c's contract). */
		gpuos_err("%s; running as pure pass-through", err);
		/* The report was asked for on the command line: it still says what happened. */
		struct gpuos_cfg only_report;
		const char *r = getenv("GPUOS_REPORT");
		char *env[] = { NULL, NULL };

		gpuos_cfg_init(&only_report);
		if (r && asprintf(&env[0], "GPUOS_REPORT=%s", r) > 0 &&
		    !gpuos_cfg_apply_env(&only_report, env, err, sizeof(err)))
			memcpy(gpuos_shim.cfg.report, only_report.report, sizeof(only_report.report));
		free(env[0]);
		gpuos_cfg_free(&only_report);
	}
	gpuos_log_level = gpuos_shim.cfg.log_level;
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	gpuos_debug("shim loaded into pid %d: enable=%d", (int)getpid(), gpuos_shim.cfg.enable);
}

void gpuos_shim_init(void)
{
	pthread_once(&init_once, init_once_fn);
}

__attribute__((destructor)) static void shim_fini(void)
{
	if (gpuos_shim.cfg.report[0])
		gpuos_report_write(gpuos_shim.cfg.report);
}
