"""Reading safetensors checkpoints in Python, trusting nothing in the file.

    u64 N (little-endian) | N bytes of JSON header | data buffer

The header maps each tensor name to {"dtype", "shape", "data_offsets"}
(offsets relative to the data buffer) and may hold "__metadata__", a map
of strings to strings. Checked before any data is read: the header's
length against the file's, strict UTF-8 JSON without duplicate keys, each
entry's keys and types, known dtypes, shapes of non-negative integers,
offsets that match the shape's byte count and together tile the data
buffer exactly (no holes, no overlaps, nothing past its end). Anything else
raises InputError naming the file.
"""

import json
import os
import stat
import struct

import numpy as np

from .errors import InputError

# The reference library's limit on the header.
MAX_HEADER_BYTES = 100_000_000

DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1",
    "BOOL": "?",
}


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError("duplicate key %r" % k)
        out[k] = v
    return out


def _uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _header(path, f, size):
    def bad(what):
        return InputError("%s: %s" % (path, what))

    if size < 8:
        raise bad("not a safetensors file (%d bytes, shorter than its 8-byte header length)" % size)
    (n,) = struct.unpack("<Q", f.read(8))
    if n > size - 8:
        raise bad("header length %d runs past the end of the file (%d bytes)" % (n, size))
    if n > MAX_HEADER_BYTES:
        raise bad("header length %d is above the limit of %d bytes" % (n, MAX_HEADER_BYTES))
    if n < 2:
        raise bad("header of %d bytes cannot be a JSON object" % n)
    raw = f.read(n)
    if len(raw) != n:
        raise bad("file shrank while reading its header")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise bad("header is not UTF-8 (byte %d)" % e.start) from None
    if "\0" in text:
        raise bad("header holds a NUL byte")
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError as e:
        raise bad("header is not valid JSON (%s)" % str(e).splitlines()[0]) from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    return header, 8 + n


def _metadata(path, header):
    md = header.pop("__metadata__", {})
    if md is None:
        md = {}
    if not isinstance(md, dict) or not all(isinstance(v, str) for v in md.values()):
        raise InputError("%s: __metadata__ must map names to strings" % path)
    return md


def _entries(path, header, data_len):
    """[(name, dtype, shape, begin, end)] sorted by offset, checked to tile the data."""
    out = []
    for name, e in header.items():
        where = "tensor '%s'" % name.replace("\n", "?")
        if not name:
            raise InputError("%s: a tensor with an empty name" % path)
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise InputError("%s: %s needs exactly dtype, shape and data_offsets" % (path, where))
        dtype, shape, offs = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in DTYPES:
            raise InputError("%s: %s has dtype %r, not one of %s" % (path, where, dtype, ", ".join(DTYPES)))
        if not isinstance(shape, list) or not all(_uint(s) for s in shape):
            raise InputError("%s: %s has a shape that is not a list of non-negative integers" % (path, where))
        if not isinstance(offs, list) or len(offs) != 2 or not all(_uint(o) for o in offs):
            raise InputError("%s: %s has data_offsets that are not two non-negative integers" % (path, where))
        begin, end = offs
        if end < begin:
            raise InputError("%s: %s ends (%d) before it begins (%d)" % (path, where, end, begin))
        if end > data_len:
            raise InputError("%s: %s ends at byte %d of a data buffer of %d bytes" % (path, where, end, data_len))
        count = 1
        for s in shape:
            count *= s
        nbytes = count * np.dtype(DTYPES[dtype]).itemsize
        if end - begin != nbytes:
            raise InputError("%s: %s has shape %s of %s (%d bytes) but data_offsets cover %d bytes"
                             % (path, where, shape, dtype, nbytes, end - begin))
        out.append((name, dtype, tuple(shape), begin, end))
    out.sort(key=lambda t: (t[3], t[4]))
    pos = 0
    for name, _, _, begin, end in out:
        if begin != pos:
            what = "overlaps the tensor before it" if begin < pos else "leaves a hole of %d bytes before it" % (begin - pos)
            raise InputError("%s: tensor '%s' (bytes %d-%d) %s" % (path, name, begin, end, what))
        pos = end
    if pos != data_len:
        raise InputError("%s: the tensors cover %d bytes of a data buffer of %d" % (path, pos, data_len))
    return out


def load(path):
    """The tensors of a safetensors file as {name: numpy array (native byte
    order)} with the PyTorch names pathfinder writes (fc1.weight of shape
    (out, in), fc1.bias, ...), plus "metadata": the file's string metadata
    (architecture, activations, bias, loss, beta, anchor, seed, dataset ...)."""
    path = os.fspath(path)
    try:
        # without blocking (a FIFO must not hang the call), then checked to be a regular file
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InputError("%s: cannot open (%s)" % (path, e.strerror or e)) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InputError("%s: not a regular file" % path)
    with os.fdopen(fd, "rb") as f:
        size = st.st_size
        header, start = _header(path, f, size)
        metadata = _metadata(path, header)
        if "metadata" in header:
            raise InputError("%s: a tensor named 'metadata' clashes with the metadata entry" % path)
        entries = _entries(path, header, size - start)
        data = f.read(size - start)
        if len(data) != size - start:
            raise InputError("%s: file shrank while reading" % path)
    out = {}
    for name, dtype, shape, begin, end in entries:
        native = np.dtype(DTYPES[dtype]).newbyteorder("=")
        if end == begin:
            out[name] = np.zeros(shape, dtype=native)
            continue
        a = np.frombuffer(data, dtype=DTYPES[dtype], count=(end - begin) // native.itemsize, offset=begin)
        out[name] = a.astype(native, copy=True).reshape(shape)
    out["metadata"] = dict(metadata)
    return out
