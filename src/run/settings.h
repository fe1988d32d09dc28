/* A run's settings (settings.c): everything that decides its results, as
 * recorded in config.json and compared when the run resumes. Internal to
 * the library. */
#ifndef PATHFINDER_RUN_SETTINGS_H
#define PATHFINDER_RUN_SETTINGS_H

#include <cJSON.h>

#include "pathfinder/run.h"

/* The settings of a sweep: data (spec, subset, normalization, checksums),
 * model, protocol (threads included), grid, Hessian samples. */
cJSON *pf_sweep_settings(const pf_sweep_config *c, const pf_arch *arch, const pf_train_config *cfg,
                         const pf_dataset *train, const pf_dataset *test, long n_points, int threads);
/* The "settings" object of a config.json (allocated); PF_EINPUT naming
 * the file when it is not a pathfinder run configuration. */
int pf_settings_read(const char *path, cJSON **settings, pf_error *err);
/* A sweep's configuration back from its settings: data, model, protocol,
 * grid and Hessian samples (strings point into settings, which must
 * outlive c); *threads gets the thread count it ran with. */
int pf_sweep_config_from_settings(const cJSON *settings, pf_sweep_config *c, int *threads,
                                  pf_error *err);

#endif
