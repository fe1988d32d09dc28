"""Run folders as Python objects: tables as dicts of numpy arrays, JSON files as dicts.

read_table(path): a CSV table the library wrote (sweep.csv, path.csv, ...)
as {column name exactly as the header spells it: numpy array}; a column
whose every cell is a number is float64, any other column an array of
strings (sweep.csv's direction, path.csv's kind).
"""

import csv
import json
import os

import numpy as np

from .errors import InputError


def read_table(path):
    """{column: numpy array} of a CSV file with a header row."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise InputError("%s: cannot be read (%s)" % (path, e.strerror or e)) from None
    if not rows:
        raise InputError("%s: empty table (no header)" % path)
    header, body = rows[0], rows[1:]
    for k, row in enumerate(body):
        if len(row) != len(header):
            raise InputError("%s: line %d has %d cells, the header %d" % (path, k + 2, len(row), len(header)))
    table = {}
    for j, name in enumerate(header):
        cells = [row[j] for row in body]
        try:
            table[name] = np.array([float(c) for c in cells], dtype=np.float64)
        except ValueError:
            table[name] = np.array(cells, dtype=str)
    return table


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise InputError("%s: cannot be read (%s)" % (path, e.strerror or e)) from None
    except json.JSONDecodeError as e:
        raise InputError("%s: not JSON (%s)" % (path, e)) from None


def _optional_json(path):
    return read_json(path) if os.path.exists(path) else None


class Sweep:
    """A sweep folder: .dir, .table (sweep.csv), .transitions and .phases
    (the lists in transitions.json and phases.json), .gaps, .hierarchy,
    .config (config.json), and .report: the report of the call that made
    it, or, for a folder opened from disk, the same document put together
    from its files."""

    def __init__(self, dir, report=None):
        self.dir = os.fspath(dir)
        if not os.path.isdir(self.dir):
            raise InputError("%s: no such sweep folder" % self.dir)
        if not os.path.exists(os.path.join(self.dir, "sweep.csv")):
            raise InputError("%s: not a sweep folder (no sweep.csv)" % self.dir)
        self.reload(report)

    def reload(self, report=None):
        """Read the folder's files again (after a refine or transitions call)."""
        self.table = read_table(os.path.join(self.dir, "sweep.csv"))
        self.config = _optional_json(os.path.join(self.dir, "config.json"))
        tj = _optional_json(os.path.join(self.dir, "transitions.json")) or {}
        pj = _optional_json(os.path.join(self.dir, "phases.json")) or {}
        self.transitions = tj.get("transitions", [])
        self.gaps = tj.get("gaps", [])
        self.phases = pj.get("phases", [])
        self.hierarchy = pj.get("hierarchy")
        if report is None:
            report = {"command": "sweep", "folder": self.dir, "transitions": self.transitions,
                      "gaps": self.gaps, "phases": self.phases, "hierarchy": self.hierarchy,
                      "config": self.config}
        self.report = report
        return self

    def transition(self, label):
        """The entry of transitions.json labelled T<k> or D<k>."""
        for t in self.transitions:
            if t.get("label") == label:
                return t
        raise InputError("%s: no transition %s (there are %s)" % (
            self.dir, label, ", ".join(t.get("label", "?") for t in self.transitions) or "none"))

    def model(self, label, side="above"):
        """Path of the checkpoint on one side ('below' or 'above') of a refined transition."""
        if side not in ("below", "above"):
            raise InputError("side is 'below' or 'above', not %r" % (side,))
        path = os.path.join(self.dir, "transitions", "%s_%s.safetensors" % (label, side))
        if not os.path.exists(path):
            raise InputError("%s: no such checkpoint (is %s refined?)" % (path, label))
        return path

    def __repr__(self):
        n = len(next(iter(self.table.values()))) if self.table else 0
        return "Sweep(%r: %d points, transitions %s)" % (
            self.dir, n, [t.get("label") for t in self.transitions])


class Path(dict):
    """A Pathfinder path (connect or probe): the dict of its summary.json,
    with .dir, .table (path.csv), .profile (profile.csv, the path and the
    straight line sampled for the barrier), .transitions and .phases (the
    transitions the path crosses and its phases, from transitions.json),
    and .i, .j (the pair's models, 0-based; probe: 0 = from, 1 = anchor)."""

    def __init__(self, dir, summary=None, transitions=None, i=0, j=1):
        self.dir = os.fspath(dir)
        if summary is None:
            summary = read_json(os.path.join(self.dir, "summary.json"))
        super().__init__(summary)
        self.table = read_table(os.path.join(self.dir, "path.csv"))
        profile = os.path.join(self.dir, "profile.csv")
        self.profile = read_table(profile) if os.path.exists(profile) else None
        if transitions is None:
            transitions = _optional_json(os.path.join(self.dir, "transitions.json")) or {}
        self.transitions = transitions.get("transitions", [])
        self.phases = transitions.get("phases", [])
        self.i, self.j = i, j

    def __repr__(self):
        p = self.get("path", {})
        return "Path(%r: %s points, barrier test %s, line barrier test %s)" % (
            self.dir, p.get("points"), p.get("barrier_test"), self.get("line", {}).get("barrier_test"))


def open_sweep(dir):
    """The Sweep of an existing folder."""
    return Sweep(dir)


def open_path(dir):
    """The Path of an existing connect or probe pair folder."""
    return Path(dir)
