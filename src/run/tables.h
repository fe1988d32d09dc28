/* Run-folder tables (tables.c): sweep.csv read and written. Internal: the
 * rows are pf_point_result. */
#ifndef PATHFINDER_RUN_TABLES_H
#define PATHFINDER_RUN_TABLES_H

#include "pathfinder/io.h"
#include "exp/results.h"

/* sweep.csv: one row per point, in the paper's column names
 * (L2_strength, Train_Loss, Train_Reg_Loss, Test_Loss, Test_Accuracy,
 * Class_0_Accuracy ... Class_{K-1}_Accuracy, r) followed by Train_Accuracy,
 * epochs, seconds, direction (up/down), index, diverged, and the Hessian's
 * columns when a row has them. Numbers are printed with 17 significant
 * digits, so a file read back and rewritten is identical. The whole file
 * is rewritten atomically; it is read back by column names. */
int pf_sweep_csv_write(const char *path, const pf_point_result *rows, long n, pf_error *err);
int pf_sweep_csv_read(const char *path, pf_point_result **rows, long *n, pf_error *err);

#endif
