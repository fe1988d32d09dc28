/* pathfinder: the whole public API of libpathfinder and libpathfinder-fig.
 *
 *   pathfinder/core.h     architectures, parameters, losses, optimizers, rng,
 *                         errors, the thread-team context (pf_ctx)
 *   pathfinder/hessian.h  Hessian-vector products, Lanczos spectra
 *   pathfinder/exp.h      experiments' building blocks: training, grids,
 *                         sweeps, detection, paths
 *   pathfinder/io.h       file formats (safetensors, IDX, CSV, NPY), datasets,
 *                         models from a spec, outputs
 *   pathfinder/run.h      whole experiments in run folders (pf_run_*), the
 *                         state format, commands by name (pf_command_*)
 *   pathfinder/fig.h      figures of run folders (libpathfinder-fig)
 *
 * Link with `pkg-config --libs pathfinder` (and pathfinder-fig for figures). */
#ifndef PATHFINDER_H
#define PATHFINDER_H

#include "pathfinder/core.h"
#include "pathfinder/conv.h"
#include "pathfinder/hessian.h"
#include "pathfinder/exp.h"
#include "pathfinder/io.h"
#include "pathfinder/run.h"
#include "pathfinder/fig.h"

#endif
