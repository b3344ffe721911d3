/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_KERNELS_CU_H
#define GPUOS_KERNELS_CU_H

/*
 * The driver API as the engine sees it: a table of entry points from libcuda.so.1, resolved
 * once (kernels/cu.def lists them). The shim never links libcuda: programs without a GPU
 * still load it, and the engine simply reports -ENODEV.
 */
#include <cuda.h>

struct gpuos_cu {
#define CU(ret, name, params)		  ret(*name) params;
#define CU_AT(ret, name, params, version) ret(*name) params;
#include "kernels/cu.def"
};

/* The table, or NULL when no usable driver is present (logged once). Thread-safe. */
const struct gpuos_cu *gpuos_cu_get(void);

/* A CUresult as a negative errno for the engine's callers; logs @what with the driver's name. */
int gpuos_cu_err(CUresult r, const char *what, const char *file, int line);

/*
 * GPUOS_CU_GOTO(stmt, err, label): run a driver call; on failure log the statement with
 * file:line and the driver's error name, set err to a negative errno and jump to label.
 */
#define GPUOS_CU_GOTO(stmt, err, label)                                                            \
	do {                                                                                       \
		CUresult r_ = (stmt);                                                              \
		if (r_ != CUDA_SUCCESS) {                                                          \
			(err) = gpuos_cu_err(r_, #stmt, __FILE__, __LINE__);                       \
			goto label;                                                                \
		}                                                                                  \
	} while (0)

#endif
