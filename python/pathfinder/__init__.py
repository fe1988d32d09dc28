"""pathfinder: probe the error landscapes of neural networks with (shifted)
L2 regularization, from Python: numpy in, numpy and dicts out.

A thin front over libpathfinder's command layer (ctypes, no compiled
extension): every function is one library command, with the options the
command line has, spelled as keywords (`pathfinder sweep --max-epochs 8`
is `pathfinder.sweep(..., max_epochs=8)`; a flag is `=True`; lists are
joined with commas). The options, their checks, defaults and help are the
library's: `pathfinder.help("sweep")` prints them.

Common keywords: data ("mnist", "fashion-mnist", a folder, or arrays
(X, y, X_test, y_test)), progress (a function called with a dict per event:
kind "epoch", "point", "note", "warning" or "lanczos" and the event's
fields), figures (None: drawn when libpathfinder-fig is there; False: none).

Calls block in C. Ctrl-C is seen when the call returns; runs are resumable,
so calling the same function again continues where it stopped.

Errors raise pathfinder.Error (InputError for bad input, code 2; RunError
at run time, code 1) with the library's one-line message.
"""

import ctypes as _ctypes
import os as _os

import numpy as _np

from ._version import __version__ as _package_version
from ._command import commands, help_text as _help_text, options, run as _run
from ._lib import LibraryNotFound, library as _library
from .errors import Error, InputError, PathfinderWarning, RunError
from .results import Path, Sweep, open_path, open_sweep, read_table
from .safetensors import load

_lib = _library()
#: The library's version (pf_version, or the version in its file name),
#: else the version this package was made with.
__version__ = _lib.version or _package_version
#: Where the libraries were loaded from (the figure library may be None).
library_path = _lib.path
fig_library_path = _lib.fig_path

__all__ = [
    "train", "evaluate", "sweep", "refine", "transitions", "hierarchy", "connect", "probe",
    "hessian", "saddle", "load", "run", "data_dir", "commands", "options", "help", "Sweep", "Path", "open_sweep",
    "open_path", "read_table", "Error", "InputError", "RunError", "PathfinderWarning",
    "LibraryNotFound", "__version__",
]


def help(command):
    """The library's help text of a command: every option, with its default."""
    return _help_text(command)


def data_dir(name="mnist"):
    """The folder the library reads a named dataset from ($PATHFINDER_DATA/NAME,
    the per-user folder or the source tree's data/); InputError naming the
    places looked in when there is none."""
    buf = _ctypes.create_string_buffer(8192)
    if not _lib.lib.pf_data_dir(str(name).encode(), buf, len(buf)):
        raise InputError("dataset %s not found; looked in %s" % (name, buf.value.decode("utf-8", "replace")))
    return buf.value.decode()


def run(command, *args, data=None, progress=None, figures=None, **options):
    """Any library command by name; returns its JSON report (a dict, or a
    list of dicts for reports of one line per model)."""
    report, _ = _run(command, args, options, data, progress, figures)
    return report


def train(out, beta=0, data=None, seeds=None, progress=None, **options):
    """Train an MLP at one L2 strength beta and write it to out (a
    .safetensors checkpoint). With seeds (a list, a range, or "0-4"), one
    model per seed, out containing {seed}; files that exist are skipped.
    Returns the report: a dict, or a list of dicts (one per seed)."""
    if isinstance(seeds, range):
        seeds = list(seeds)
    opts = dict(options, out=out, beta=beta, seeds=seeds)
    report, _ = _run("train", (), opts, data, progress, False)
    if seeds is not None and isinstance(report, dict):
        report = [report]
    return report


def evaluate(path, data=None, beta=None, progress=None, **options):
    """Metrics of a checkpoint on train and test data: loss, accuracy,
    per-class accuracy, r and L_beta (beta None: the checkpoint's)."""
    report, _ = _run("eval", (path,), dict(options, beta=beta), data, progress, False)
    return report


def sweep(out, beta=None, data=None, arch=None, progress=None, figures=None, **options):
    """A quasi-static beta sweep into the folder out (beta None: the
    paper's 451-point grid; else a list of values and ranges like
    "0,0.02:0.09:0.0005"), then its transitions detected, refined and
    explained. Rerunning the same call resumes it. Returns a Sweep."""
    opts = dict(options, out=out, beta=beta, arch=arch)
    report, _ = _run("sweep", (), opts, data, progress, figures)
    return Sweep(out, report)


def refine(dir, transition, tol=None, data=None, progress=None, figures=None, **options):
    """Bisect one transition (T<k> or D<k>) of a finished sweep again, to
    tol in beta (None: the library's default), with the sweep's own data,
    model and protocol. data is needed only for a sweep of arrays (the same
    arrays). The transition is found with the detection options given here
    (threshold=, window=, ...), the library's defaults unless given, as in
    `pathfinder transitions`. Returns the updated Sweep."""
    report, _ = _run("refine", (dir, transition), dict(options, tol=tol), data, progress, figures)
    return Sweep(dir, report)


def transitions(dir, progress=None, figures=None, **options):
    """Detect the transitions and phases of a sweep folder again (rewrites
    transitions.json, phases.json and its figures). Returns the Sweep."""
    report, _ = _run("transitions", (dir,), options, None, progress, figures)
    return Sweep(dir, report)


def hierarchy(*dirs, out=None, progress=None, figures=None, **options):
    """Merge the phases of several sweep folders into one hierarchy of
    nested accuracy basins (written to out when given). Returns the report."""
    report, _ = _run("hierarchy", dirs, dict(options, out=out), None, progress, figures)
    return report


def _paths(report):
    return [Path(p["folder"], p.get("summary"), p.get("transitions"), int(p["i"]), int(p["j"]))
            for p in report["pairs"]]


def connect(a, b, *more, out, data=None, progress=None, figures=None, **options):
    """Pathfinder paths between minima: from a, anchored at b (and every
    pair, or a star=, of more models). Returns a Path for two models, else
    a list of Paths (one per pair, each with .i and .j)."""
    report, _ = _run("connect", (a, b) + more, dict(options, out=out), data, progress, figures)
    paths = _paths(report)
    return paths[0] if not more else paths


def probe(start=None, anchor=None, out=None, data=None, progress=None, figures=None, **options):
    """The Pathfinder path from the minimum start (the command line's
    --from; from_= works too) toward anchor, a model saved at a transition
    (a sweep's transitions/T<k>_below|above.safetensors): the transitions
    it crosses, in order. Returns a Path."""
    opts = dict(options, out=out, anchor=anchor)
    if start is not None:
        opts["from_"] = start
    report, _ = _run("probe", (), opts, data, progress, figures)
    return _paths(report)[0]


def _arrays(d):
    """Lists of numbers (or of booleans) in a report as numpy arrays."""
    out = {}
    for k, v in d.items():
        if isinstance(v, list) and v and all(isinstance(x, bool) for x in v):
            out[k] = _np.array(v, dtype=bool)
        elif isinstance(v, list) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                 or x is None for x in v):
            out[k] = _np.array([_np.nan if x is None else x for x in v], dtype=_np.float64)
        else:
            out[k] = v
    return out


def hessian(path, k=None, which=None, data=None, progress=None, **options):
    """Extreme eigenvalues of the Hessian of E and of L_beta at a
    checkpoint (k at each requested end; which "both", "largest" or
    "smallest"; None: the library's defaults), by Lanczos on exact
    Hessian-vector products. Returns the report with eigenvalues_E,
    eigenvalues_L, residuals and converged as numpy arrays; with vectors=
    FILE.npy also "vectors" (the eigenvectors, one per row), with density=
    FILE.csv also "density" ({lambda, density} arrays).

    Several checkpoints (a list of paths) need out=DIR: one result each,
    in DIR/model_<i>.json and one table DIR/spectra.csv, and a list of
    reports in the list's order (shared out among the ranks under mpirun,
    resumed when run again)."""
    if isinstance(path, (list, tuple)):
        report, _ = _run("hessian", tuple(path), dict(options, k=k, which=which), data, progress, False)
        return [_arrays(r) for r in (report if isinstance(report, list) else [report])]
    report, _ = _run("hessian", (path,), dict(options, k=k, which=which), data, progress, False)
    result = _arrays(report)
    if options.get("vectors") and _os.path.exists(options["vectors"]):
        result["vectors"] = _np.load(options["vectors"])
    if options.get("density") and _os.path.exists(options["density"]):
        result["density"] = read_table(options["density"])
    return result


def saddle(path, out, beta=None, data=None, progress=None, **options):
    """The index-1 saddle of L_beta next to the minimum near the model at
    path (a transition's T<k>_below.safetensors, or any model and beta):
    written to out (.safetensors); returns the report (L_beta at the
    minimum and the saddle, the barrier, the index, the lowest eigenvalues,
    test accuracy and encoded classes) with lists as numpy arrays.
    With series="B1,B2,..." (a sweep's grid syntax) the minimum is followed
    from the model's beta to each in turn, out is a folder of saddles, and
    the report holds "points" (one such report each) and the fits of the
    fold's laws, "barrier_fit" and "lambda_min_fit"."""
    report, _ = _run("saddle", (str(path),), dict(options, out=str(out), beta=beta), data, progress, False)
    return _arrays(report)

