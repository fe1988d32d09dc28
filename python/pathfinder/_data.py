"""Datasets in memory: numpy arrays as the library's pf_dataset structs.

data=(X, y, X_test, y_test): X of shape (n, features) (or (n, ...), which
is flattened per sample), y of shape (n,) or (n, k). Integer (or boolean)
y are class labels; floating-point y are regression targets, one column
per target (1-D: one target). The arrays are converted to the library's
types (float32 features and targets, int32 labels, C order) and kept alive
with the structs, for as long as the call runs. The library checks them
as it checks a file's contents (finite values, labels that are class
indices) and normalizes them like a table (per-feature z-scores, unless
normalize= says otherwise).
"""

import ctypes

import numpy as np

from ._lib import pf_dataset
from .errors import InputError

_INT32 = np.iinfo(np.int32)


def _features(X, which):
    try:
        x = np.asarray(X)
        if x.dtype == object or np.iscomplexobj(x) or not (np.issubdtype(x.dtype, np.number)
                                                          or x.dtype == np.bool_):
            raise TypeError("dtype %s" % x.dtype)
        x = np.ascontiguousarray(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InputError("arrays: %s features are not an array of numbers (%s)" % (which, e)) from None
    if x.ndim < 2:
        raise InputError("arrays: %s features need shape (samples, features), got %s" % (which, x.shape))
    if x.ndim > 2:
        x = np.ascontiguousarray(x.reshape(x.shape[0], -1))
    return x


def _labels_or_targets(y, n, which):
    try:
        y = np.asarray(y)
    except (TypeError, ValueError) as e:
        raise InputError("arrays: %s targets are not an array (%s)" % (which, e)) from None
    if y.ndim == 0 or y.ndim > 2 or y.shape[0] != n:
        raise InputError("arrays: %s has %d samples but its targets have shape %s" % (which, n, y.shape))
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        if y.ndim == 2 and y.shape[1] != 1:
            raise InputError("arrays: %s class labels need shape (n,), got %s" % (which, y.shape))
        y = y.reshape(n)
        if y.size and (y.min() < _INT32.min or y.max() > _INT32.max):
            raise InputError("arrays: %s labels do not fit in 32 bits" % which)
        return np.ascontiguousarray(y, dtype=np.int32), None
    if np.issubdtype(y.dtype, np.floating):
        t = y.reshape(n, 1) if y.ndim == 1 else y
        return None, np.ascontiguousarray(t, dtype=np.float32)
    raise InputError("arrays: %s targets must be integers (class labels) or floats (regression), "
                     "not %s" % (which, y.dtype))


class Arrays:
    """The train and test pf_dataset structs of data=(X, y, X_test, y_test),
    and the numpy arrays they point into (kept alive with this object)."""

    def __init__(self, data):
        if not isinstance(data, (tuple, list)) or len(data) != 4:
            raise InputError("data: give 'mnist', a folder, or arrays (X, y, X_test, y_test)")
        self.keep = []
        self.train = self._dataset(data[0], data[1], "train")
        self.test = self._dataset(data[2], data[3], "test")

    def _dataset(self, X, y, which):
        x = _features(X, which)
        labels, targets = _labels_or_targets(y, x.shape[0], which)
        if x.shape[1] > _INT32.max:
            raise InputError("arrays: %s has too many features (%d)" % (which, x.shape[1]))
        d = pf_dataset()
        d.n = x.shape[0]
        d.dim = x.shape[1]
        d.x = x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        if labels is not None:
            d.labels = labels.ctypes.data_as(ctypes.POINTER(ctypes.c_int))
            d.n_classes = 0   # the library takes the larger of train's and test's top label + 1
        else:
            d.targets = targets.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            d.n_targets = targets.shape[1]
        d.name = b"arrays"
        self.keep.extend(a for a in (x, labels, targets) if a is not None)
        return d
