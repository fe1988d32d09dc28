"""Running a library command (pf_command_*) from Python.

Every public function goes through run(): the command is made by name,
each keyword argument is set as the option the command line spells the
same way (max_epochs=8 -> --max-epochs 8; True sets a flag; False and None
leave the option unset; lists and tuples are joined with commas), the
positional arguments are added, data is given as a --data spec or as
arrays in memory, progress events go to a Python function, and the report
comes back as JSON. The options, their checks, defaults and help are the
library's own: an unknown keyword or a bad value is the library's error.

The call blocks in C and holds no Python state. Ctrl-C is seen when it
returns (the KeyboardInterrupt is raised then); the runs write their state
as they go, so rerunning the same call resumes where it stopped.
"""

import ctypes
import json
import numbers
import os
import warnings

import numpy as np

from ._data import Arrays
from ._lib import EVENT_FN, EVENT_KINDS, library, pf_error, pf_report
from .errors import InputError, PathfinderWarning, RunError, error_for


def option_name(key):
    """Python keyword -> option name: from_ -> from, max_epochs -> max-epochs."""
    return key.rstrip("_").replace("_", "-")


def _text(v, option):
    if isinstance(v, (bool, np.bool_)):
        raise InputError("--%s: a list cannot hold %r" % (option, v))
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        return repr(float(v))
    if isinstance(v, os.PathLike):
        v = os.fspath(v)
    if isinstance(v, str):
        if "\0" in v:
            raise InputError("--%s: the value holds a NUL character" % option)
        return v
    raise InputError("--%s takes a number, a string or a list of them, not %s"
                     % (option, type(v).__name__))


def option_value(option, value):
    """The text of an option's value (None: a flag), or False to leave it unset."""
    if value is None or value is False or (isinstance(value, np.bool_) and not value):
        return False
    if value is True or isinstance(value, np.bool_):
        return None
    if isinstance(value, (list, tuple, range, np.ndarray)):
        items = list(np.asarray(value).ravel()) if isinstance(value, np.ndarray) else list(value)
        if not items:
            raise InputError("--%s: an empty list" % option)
        return ",".join(_text(v, option) for v in items)
    return _text(value, option)


def _options(L, cmd):
    """{option: takes a value} of a command."""
    out = {}
    for i in range(L.pf_command_n_options(cmd)):
        takes_value = ctypes.c_int()
        name = L.pf_command_option(cmd, i, ctypes.byref(takes_value))
        out[name.decode()] = bool(takes_value.value)
    return out


def _check(rc, err):
    if rc:
        raise error_for(err.code or rc, err.msg.decode("utf-8", "replace"))


def _event_dict(e):
    d = {name: getattr(e, name) for name, _ in e._fields_}
    d["kind"] = EVENT_KINDS[e.kind] if 0 <= e.kind < len(EVENT_KINDS) else e.kind
    for name in ("run", "text"):
        d[name] = d[name].decode("utf-8", "replace") if d[name] is not None else None
    if e.class_accuracy and e.n_classes > 0:
        d["class_accuracy"] = np.ctypeslib.as_array(e.class_accuracy, shape=(e.n_classes,)).copy()
    else:
        d["class_accuracy"] = None
    return d


class _Events:
    """The event callback: warnings to the warnings module, every event as
    a dict to progress(event) if given. An exception in progress (or a
    KeyboardInterrupt arriving while Python runs in the callback) is kept and
    raised when the call returns: the C call cannot be stopped midway."""

    def __init__(self, progress):
        self.progress = progress
        self.exception = None
        self.fn = EVENT_FN(self._on_event)   # referenced until the call returns

    def _on_event(self, _ctx, ev):
        if self.exception is not None:
            return
        try:
            e = ev.contents
            if e.kind == 3 and e.text:
                warnings.warn(e.text.decode("utf-8", "replace"), PathfinderWarning, stacklevel=2)
            if self.progress is not None:
                self.progress(_event_dict(e))
        except BaseException as x:   # noqa: B036 - kept and raised after the call
            self.exception = x


def _report_json(text):
    """The report's JSON: one document, or one per line (train --seeds)."""
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        return lines


def run(command, args=(), options=None, data=None, progress=None, figures=None, argv0=None):
    """Run a library command; returns (report as parsed JSON, report text).

    args: positional arguments (checkpoints, folders). options: keyword ->
    value as documented above. data: None, "mnist", a folder, or arrays
    (X, y, X_test, y_test). progress: a function of one dict per event.
    figures: None (draw them when libpathfinder-fig is loaded), True
    (require it) or False. argv0: the name recorded as the command line in
    a sweep's config.json."""
    lib = library()
    L = lib.lib
    err = pf_error()
    cmd = ctypes.c_void_p()
    _check(L.pf_command_new(command.encode(), ctypes.byref(cmd), ctypes.byref(err)), err)
    keep = []
    try:
        recorded = [(argv0 or "pathfinder.%s" % command).encode()]
        takes = _options(L, cmd)
        for key, value in (options or {}).items():
            name = option_name(key)
            text = option_value(name, value)
            if text is False:
                continue
            _check(L.pf_command_set(cmd, name.encode(), None if text is None else text.encode(),
                                    ctypes.byref(err)), err)
            recorded.append(("--" + name).encode())
            if text is not None:
                recorded.append(text.encode())
        if data is not None:
            if isinstance(data, (str, os.PathLike)):
                spec = os.fspath(data)
                _check(L.pf_command_set(cmd, b"data", _text(spec, "data").encode(), ctypes.byref(err)), err)
                recorded += [b"--data", spec.encode()]
            else:
                arrays = Arrays(data)
                keep.append(arrays)
                _check(L.pf_command_arrays(cmd, ctypes.byref(arrays.train), ctypes.byref(arrays.test),
                                           ctypes.byref(err)), err)
        if "json" in takes:
            _check(L.pf_command_set(cmd, b"json", None, ctypes.byref(err)), err)
        for a in args:
            text = _text(a, "argument")
            _check(L.pf_command_arg(cmd, text.encode(), ctypes.byref(err)), err)
            recorded.append(text.encode())
        events = _Events(progress)
        L.pf_command_events(cmd, events.fn, None)
        if figures is None:
            figures = lib.fig_folder is not None
        elif figures and lib.fig_folder is None:
            raise RunError("figures=True needs libpathfinder-fig.so.0, which was not loaded (looked at: %s)"
                           % "; ".join(lib.fig_tried or []))
        if figures:
            L.pf_command_figures(cmd, lib.fig_folder)
        argv = (ctypes.c_char_p * (len(recorded) + 1))(*recorded, None)
        keep.append(argv)
        L.pf_command_line(cmd, len(recorded), argv)

        report = pf_report()
        rc = L.pf_command_run(cmd, ctypes.byref(report), ctypes.byref(err))
        try:
            text = ctypes.string_at(report.text).decode("utf-8", "replace") if report.text else ""
            raw = ctypes.string_at(report.json).decode("utf-8", "replace") if report.json else ""
        finally:
            L.pf_report_free(ctypes.byref(report))
        if events.exception is not None:
            raise events.exception
        parsed = _report_json(raw)
        if rc:
            raise error_for(err.code or rc, err.msg.decode("utf-8", "replace"), parsed)
        return parsed, text
    finally:
        L.pf_command_free(cmd)
        del keep


def commands():
    """The library's command names."""
    L = library().lib
    out = []
    i = 0
    while True:
        name = L.pf_command_name(i)
        if name is None:
            return out
        out.append(name.decode())
        i += 1


def options(command):
    """{option name: whether it takes a value} of a command, as the library lists them."""
    L = library().lib
    err = pf_error()
    cmd = ctypes.c_void_p()
    _check(L.pf_command_new(command.encode(), ctypes.byref(cmd), ctypes.byref(err)), err)
    try:
        return _options(L, cmd)
    finally:
        L.pf_command_free(cmd)


def help_text(command):
    """The library's --help text of a command (with its defaults)."""
    lib = library()
    err = pf_error()
    cmd = ctypes.c_void_p()
    _check(lib.lib.pf_command_new(command.encode(), ctypes.byref(cmd), ctypes.byref(err)), err)
    try:
        p = lib.lib.pf_command_help(cmd)
        if not p:
            raise RunError("out of memory for the help text")
        try:
            return ctypes.string_at(p).decode("utf-8", "replace")
        finally:
            lib.free(p)
    finally:
        lib.lib.pf_command_free(cmd)
