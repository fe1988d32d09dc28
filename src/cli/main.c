/* pathfinder: probe the error landscapes of neural networks with (shifted)
 * L2 regularization. The tool dispatches to one command per task. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char *const usage =
    "Usage: pathfinder COMMAND [OPTIONS]\n"
    "Probe the error landscape of neural networks (MLPs and small CNNs) with (shifted) L2\n"
    "regularization.\n\n"
    "Commands:\n"
    "  train        train a model at one L2 strength and write a checkpoint\n"
    "  eval         metrics of a checkpoint on train and test data\n"
    "  hessian      extreme Hessian eigenvalues and saddle index of E and L_beta at a model\n"
    "  saddle       the index-1 saddle of L_beta next to the minimum near a model\n"
    "  sweep        quasi-static beta sweep: phase diagram, transitions, hierarchy\n"
    "  transitions  detect transitions and phases in a sweep folder\n"
    "  refine       bisect one transition of a finished sweep again, to a finer tolerance\n"
    "  connect      Pathfinder paths between minima: certified barriers vs the straight line\n"
    "  probe        Pathfinder path from a minimum toward a saddle: the transitions it crosses\n"
    "  hierarchy    merge the phases of several sweeps into one hierarchy\n"
    "  plot         draw columns of a CSV table (sweep.csv, path.csv, ...) against another\n\n"
    "Run 'pathfinder COMMAND --help' for a command's options.\n"
    "  --version  print the version\n"
    "  --help     this text\n\n"
    "Exit status: 0 success, 1 runtime failure, 2 bad usage or bad input.\n";

#ifdef __SANITIZE_ADDRESS__
/* Under LeakSanitizer (make asan): fontconfig keeps its caches for the life
 * of the process and PLplot's cairo driver does not free its gradient
 * patterns; those are theirs, not leaks of this program. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libfontconfig.so\nleak:libcairo.so\nleak:libpango\nleak:libplplot.so\n";
}
#endif

/* OpenBLAS fell back to its slowest kernels on a CPU it does not know:
 * run again with the ones that suit it (unless the user chose). */
static void fix_blas_kernels(char **argv)
{
    const char *core = pf_blas_better_core();
    if (!core || getenv("OPENBLAS_CORETYPE")) return;
    /* this very program, by its own path (so that ps still shows its name) */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return;
    self[len] = '\0';
    if (setenv("OPENBLAS_CORETYPE", core, 1) == 0) execv(self, argv);
    unsetenv("OPENBLAS_CORETYPE"); /* could not: carry on as we are */
}

int main(int argc, char **argv)
{
    fix_blas_kernels(argv);
    if (argc < 2) {
        fputs(usage, stderr);
        return PF_EINPUT;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return PF_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("pathfinder %s\n", PF_VERSION);
        return PF_OK;
    }
    if (strcmp(cmd, "plot") == 0) return cmd_plot(argc - 1, argv + 1);
    for (int i = 0; pf_command_name(i); i++)
        if (strcmp(cmd, pf_command_name(i)) == 0) return cli_run_command(cmd, argc - 1, argv + 1);
    fprintf(stderr, "pathfinder: unknown command '%s' (see pathfinder --help)\n", cmd);
    return PF_EINPUT;
}
