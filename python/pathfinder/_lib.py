"""Loading libpathfinder (and libpathfinder-fig) and their ctypes prototypes.

Where the libraries are looked for, in order:

1. $PATHFINDER_LIB: a path to libpathfinder.so.0 ($PATHFINDER_FIG_LIB for
   the figure library; by default the one beside $PATHFINDER_LIB);
2. a copy beside these files (what `pip install ./python` puts there when
   the tree's build/ folder holds the libraries);
3. the source tree's build folder (python/../build/), when the package runs
   from the tree;
4. the system's loader (`libpathfinder.so.0` on its search path).

The figure library is optional: without it runs draw no figures. It is
looked for beside the main library that was loaded first, so the two match.

The structs below mirror include/pathfinder/core.h and run.h field by field.
"""

import ctypes
import os

from .errors import Error

LIB_NAME = "libpathfinder.so.0"
FIG_LIB_NAME = "libpathfinder-fig.so.0"
_HERE = os.path.dirname(os.path.abspath(__file__))


class LibraryNotFound(Error, ImportError):
    """libpathfinder.so.0 could not be loaded from any of the places looked at."""


# ---------------------------------------------------------------- structs

class pf_error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("msg", ctypes.c_char * 512)]


class pf_dataset(ctypes.Structure):
    _fields_ = [
        ("n", ctypes.c_size_t),
        ("dim", ctypes.c_int),
        ("x", ctypes.POINTER(ctypes.c_float)),        # (n, dim)
        ("labels", ctypes.POINTER(ctypes.c_int)),     # (n) or NULL
        ("targets", ctypes.POINTER(ctypes.c_float)),  # (n, n_targets) or NULL
        ("n_classes", ctypes.c_int),
        ("n_targets", ctypes.c_int),
        ("name", ctypes.c_char * 256),
    ]


class pf_report(ctypes.Structure):
    # char * kept as void pointers: ctypes would copy and lose the pointer
    # that pf_report_free needs.
    _fields_ = [("json", ctypes.c_void_p), ("text", ctypes.c_void_p)]


EVENT_KINDS = ("epoch", "point", "note", "warning", "lanczos")


class pf_event(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_int),
        ("run", ctypes.c_char_p),
        ("text", ctypes.c_char_p),
        ("index", ctypes.c_long),
        ("total", ctypes.c_long),
        ("beta", ctypes.c_double),
        ("direction", ctypes.c_int),
        ("epoch", ctypes.c_int),
        ("max_epochs", ctypes.c_int),
        ("step", ctypes.c_long),
        ("steps", ctypes.c_long),
        ("loss", ctypes.c_double),
        ("epochs", ctypes.c_int),
        ("train_loss", ctypes.c_double),
        ("test_accuracy", ctypes.c_double),
        ("test_error", ctypes.c_double),
        ("r", ctypes.c_double),
        ("class_accuracy", ctypes.POINTER(ctypes.c_double)),
        ("n_classes", ctypes.c_int),
        ("bridge", ctypes.c_int),
        ("retries", ctypes.c_int),
        ("jump", ctypes.c_int),
        ("segment_max_test_error", ctypes.c_double),
        ("dist_anchor", ctypes.c_double),
        ("step_length", ctypes.c_double),
        ("diverged", ctypes.c_int),
        ("seconds", ctypes.c_double),
    ]


EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(pf_event))

# ------------------------------------------------------------- prototypes

_P = ctypes.c_void_p
_S = ctypes.c_char_p
_I = ctypes.c_int
_ERR = ctypes.POINTER(pf_error)

_PROTOTYPES = {
    "pf_command_name": (_S, [_I]),
    "pf_command_new": (_I, [_S, ctypes.POINTER(_P), _ERR]),
    "pf_command_free": (None, [_P]),
    "pf_command_n_options": (_I, [_P]),
    "pf_command_option": (_S, [_P, _I, ctypes.POINTER(_I)]),
    "pf_command_set": (_I, [_P, _S, _S, _ERR]),
    "pf_command_arg": (_I, [_P, _S, _ERR]),
    "pf_command_arrays": (_I, [_P, ctypes.POINTER(pf_dataset), ctypes.POINTER(pf_dataset), _ERR]),
    "pf_command_events": (None, [_P, EVENT_FN, _P]),
    "pf_command_figures": (None, [_P, _P]),
    "pf_command_line": (None, [_P, _I, ctypes.POINTER(_S)]),
    "pf_command_json": (_I, [_P]),
    "pf_command_help": (_P, [_P]),   # allocated; freed with free()
    "pf_command_run": (_I, [_P, ctypes.POINTER(pf_report), _ERR]),
    "pf_report_free": (None, [ctypes.POINTER(pf_report)]),
    "pf_data_dir": (_I, [_S, ctypes.c_char_p, ctypes.c_size_t]),
}


def _candidates(env_var, name, beside=None):
    """(description, path or name) in the order they are tried."""
    out = []
    env = os.environ.get(env_var)
    if env:
        out.append(("$%s" % env_var, env))
    if beside:
        out.append(("beside %s" % beside, os.path.join(os.path.dirname(beside), name)))
    out.append(("beside the package", os.path.join(_HERE, name)))
    out.append(("the source tree's build folder",
                os.path.join(os.path.dirname(os.path.dirname(_HERE)), "build", name)))
    out.append(("the system's library path", name))
    return out


def _load(env_var, name, symbol, beside=None):
    """(CDLL, path) of the first candidate that loads, or (None, [tried])."""
    tried = []
    for where, path in _candidates(env_var, name, beside):
        if os.sep in path and not os.path.exists(path):
            tried.append("%s (%s: no such file)" % (path, where))
            if where.startswith("$"):
                # a library named explicitly must be the one used
                return None, tried
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s: %s)" % (path, where, e))
            if where.startswith("$"):
                return None, tried
            continue
        return lib, _where_loaded(lib, symbol, path)
    return None, tried


def _where_loaded(lib, symbol, fallback):
    """The file a CDLL was loaded from (dladdr of a function it defines:
    dlsym also finds its dependencies' symbols)."""
    try:
        class Dl_info(ctypes.Structure):
            _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                        ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]
        libdl = ctypes.CDLL(None)
        dladdr = libdl.dladdr
        dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(Dl_info)]
        dladdr.restype = ctypes.c_int
        info = Dl_info()
        fn = getattr(lib, symbol, None)
        if fn is not None and dladdr(ctypes.cast(fn, ctypes.c_void_p), ctypes.byref(info)):
            return os.path.abspath(info.dli_fname.decode())
    except (OSError, AttributeError, ValueError):
        pass
    return os.path.abspath(fallback) if os.sep in fallback else fallback


class Library:
    """The loaded libraries: .lib (libpathfinder), .fig (libpathfinder-fig or
    None), their paths, and the C library's free()."""

    def __init__(self):
        lib, where = _load("PATHFINDER_LIB", LIB_NAME, "pf_command_new")
        if lib is None:
            raise LibraryNotFound(
                "pathfinder: cannot load %s; looked at: %s. Build it (make libs), set "
                "PATHFINDER_LIB to its path, or install it (make install)." % (LIB_NAME, "; ".join(where)))
        missing = [f for f in _PROTOTYPES if not hasattr(lib, f)]
        if missing:
            raise LibraryNotFound("pathfinder: %s lacks %s: too old for this package"
                                  % (where, ", ".join(missing)))
        for fname, (restype, argtypes) in _PROTOTYPES.items():
            f = getattr(lib, fname)
            f.restype = restype
            f.argtypes = argtypes
        self.lib = lib
        self.path = where
        fig, fig_where = _load("PATHFINDER_FIG_LIB", FIG_LIB_NAME, "pf_fig_folder", beside=where)
        if fig is None and os.environ.get("PATHFINDER_FIG_LIB"):
            raise LibraryNotFound("pathfinder: cannot load the figure library: %s" % "; ".join(fig_where))
        if fig is not None and hasattr(fig, "pf_fig_folder"):
            self.fig = fig
            self.fig_path = fig_where
            self.fig_folder = ctypes.cast(fig.pf_fig_folder, ctypes.c_void_p)
        else:
            self.fig = None
            self.fig_path = None
            self.fig_folder = None
        self.fig_tried = None if fig is not None else fig_where
        libc = ctypes.CDLL(None)
        self.free = libc.free
        self.free.argtypes = [ctypes.c_void_p]
        self.free.restype = None
        self.version = self._version()

    def _version(self):
        """pf_version() when the library exports it, else the version in
        the library file's real name (libpathfinder.so.X.Y.Z), else None."""
        if hasattr(self.lib, "pf_version"):
            f = self.lib.pf_version
            f.restype = ctypes.c_char_p
            f.argtypes = []
            return f().decode()
        real = os.path.basename(os.path.realpath(self.path))
        prefix = "libpathfinder.so."
        if real.startswith(prefix) and real[len(prefix):].count(".") == 2:
            return real[len(prefix):]
        return None


_library = None


def library():
    """The loaded libraries (loaded on first use)."""
    global _library
    if _library is None:
        _library = Library()
    return _library
