#!/usr/bin/python3
"""Write the fuzzers' seed corpus: a few tiny valid files per harness and
some edge cases. Each harness's input layout (selector bytes in front of
the file, where it has them) is described at the top of its fuzz_NAME.c.

Usage: tests/fuzz/make_corpus.py [OUTDIR]   (default: tests/fuzz/corpus)
The files are committed; rerun this only to change the seeds. Inputs the
fuzzers found that crashed something are kept beside these, named
crash-DEFECT, and are not written here.
"""
import gzip
import json
import os
import struct
import sys
import zlib

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


# ---------------------------------------------------------------- safetensors
def safetensors(tensors, metadata=None, pad=True):
    """tensors: [(name, shape, floats)] laid out in the given order."""
    header, blob = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, shape, values in tensors:
        data = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob


small = [("fc1.bias", [2], [0.5, -0.5]),
         ("fc1.weight", [2, 3], [0.1 * i for i in range(6)]),
         ("fc2.bias", [2], [0.25, 0]),
         ("fc2.weight", [2, 2], [1, -1, 0.5, 2])]
meta = {"format": "pt", "architecture": "3,2,2", "activations": "tanh,linear",
        "bias": "true", "loss": "ce", "beta": "0.01", "anchor": "origin", "seed": "7",
        "dataset": "mnist"}
# first byte: bit 0 passes a fallback architecture, bit 1 an expected one
put("safetensors", "small-meta", b"\x00" + safetensors(small, meta))
put("safetensors", "small-expect", b"\x03" + safetensors(small, meta))
put("safetensors", "torch-no-meta", b"\x01" + safetensors(small, pad=False))
put("safetensors", "no-bias", b"\x00" + safetensors(
    [("fc1.weight", [1, 2], [1, 2])], {"bias": "false", "beta": "0"}))
put("safetensors", "empty-header", b"\x00" + struct.pack("<Q", 2) + b"{}")
put("safetensors", "length-only", b"\x00" + struct.pack("<Q", 0))
put("safetensors", "neg-beta", b"\x00" + safetensors(small, {"beta": "-5"}))


# ------------------------------------------------------------------------ idx
def idx(type_code, dims, payload):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


labels = idx(0x08, [6], bytes([0, 1, 2, 1, 0, 9]))
images = idx(0x08, [2, 2, 2], bytes(range(0, 80, 10)))
floats = idx(0x0D, [2, 2], struct.pack(">4f", 0.5, -1, 3, 1e-3))
doubles = idx(0x0E, [3], struct.pack(">3d", 0.5, -1, 1e30))
shorts = idx(0x0B, [2], struct.pack(">2h", -300, 300))
# byte 0: bit 0 clear, the file as it is; set, the harness gzips the rest
# (bits 1-2: 1 to 3 members split where bytes 1 and 2 say; bit 3: cut the
# last 1 + bits 4-6 bytes off)
for name, data in [("labels", labels), ("images", images), ("floats", floats),
                   ("doubles", doubles), ("shorts", shorts),
                   ("zero-dim", idx(0x0C, [0, 4], b"")),
                   ("images.gz", gz(images)),
                   ("multi-member.gz", gz(images[:5]) + gz(images[5:14]) + gz(images[14:])),
                   ("nan.gz", gz(idx(0x0D, [2], struct.pack(">2f", float("nan"), 1)))),
                   ("mod32.gz", gz(idx(0x08, [2, 0x80000005], bytes(10))))]:
    put("idx", name, b"\x00" + data)
put("idx", "gzip-by-harness", b"\x01" + images)
put("idx", "three-members", b"\x05" + floats)
put("idx", "cut-trailer", b"\x19" + labels)
put("idx", "two-members-long", b"\x03" + idx(0x08, [3, 4, 4], bytes(range(48))))

# ------------------------------------------------------------------------ csv
# first byte: n_targets = 1 + b % 3, kind = b / 3 % 3 (auto, class, regression)
put("csv", "labels", b"\x00" + b"x1,x2,y\n1,2,0\n3.5,-4,2\n0,0,1\n")
put("csv", "regression", b"\x06" + b"1,2,0.5\n3,4,-1\n")
put("csv", "two-targets", b"\x01" + b"a,b,c,d\r\n1,2,3,4\r\n5,6,7,8\r\n\r\n")
put("csv", "class-forced", b"\x03" + b"1e3,2,1\n-0,4,0\n")
put("csv", "mixed-header", b"\x00" + b"1,abc,0\n2,3,1\n")
put("csv", "nan", b"\x00" + b"x,y\nnan,1\n")


# ------------------------------------------------------------------------ npy
def npy(descr, shape, data, version=1):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    pre = 10 if version == 1 else 12
    hlen = len(d) + 1
    hlen += -(pre + hlen) % 64
    head = d.ljust(hlen - 1) + "\n"
    size = struct.pack("<H", hlen) if version == 1 else struct.pack("<I", hlen)
    return b"\x93NUMPY" + bytes([version, 0]) + size + head.encode() + data


def npy_pair(x, y, kind=0):
    # bytes 0-1: length of the features file, byte 2: target kind
    return struct.pack("<H", len(x)) + bytes([kind]) + x + y


x34 = npy("<f4", "(3, 4)", struct.pack("<12f", *range(12)))
put("npy", "labels", npy_pair(x34, npy("<i8", "(3,)", struct.pack("<3q", 2, 0, 4))))
put("npy", "regression", npy_pair(x34, npy("<f8", "(3, 2)", struct.pack("<6d", *range(6)))))
put("npy", "v2-ubyte", npy_pair(npy("|u1", "(4,)", bytes([0, 128, 255, 7]), 2),
                                npy("<i2", "(4,)", struct.pack("<4h", 1, 1, 0, 3), 2)))
put("npy", "class-forced", npy_pair(x34, npy("<f4", "(3,)", struct.pack("<3f", 1, 0, 1)), 1))
put("npy", "cut-descr", npy_pair(b"\x93NUMPY\x01\x00\x0b\x00{'descr': '", b""))
put("npy", "bool-i1", npy_pair(npy("|b1", "(2, 1)", b"\x01\x00"), npy("|i1", "(2,)", b"\x01\xff")))


# ---------------------------------------------------------------------- state
def state(n_params, moments, next_index=3):
    head = b"PFSTATE1" + struct.pack("<Qq4Qqq", n_params, next_index, 1, 2, 3, 4, 17, moments)
    body = head + struct.pack("<%df" % (n_params * (3 if moments else 1)),
                              *[0.5 * i for i in range(n_params * (3 if moments else 1))])
    return body + struct.pack("<I", zlib.crc32(body))


# first byte: bit 0 fixes the CRC up, bit 1 makes the parameter count one off
put("state", "moments", b"\x00" + state(3, 1))
put("state", "plain", b"\x00" + state(2, 0))
put("state", "fix-crc", b"\x01" + state(4, 1)[:-4] + b"\0\0\0\0")
put("state", "mismatch", b"\x02" + state(1, 0))

# ------------------------------------------------------------------ sweep.csv
cols = ["L2_strength", "Train_Loss", "Train_Reg_Loss", "Test_Loss", "Test_Accuracy",
        "Class_0_Accuracy", "Class_1_Accuracy", "r", "Train_Accuracy", "epochs", "seconds",
        "direction", "index"]
rows = ["0,0.1,0.1,0.2,95,96,94,12.5,97,50,1.5,up,0",
        "0.02,0.5,0.9,0.6,80,90,70,8.25,81,6,0.25,down,1"]
put("sweep_csv", "two-classes", ",".join(cols) + "\n" + "\n".join(rows) + "\n")
hcols = cols + ["lambda_min_E", "lambda_max_E", "lambda_min_L", "lambda_max_L",
                "hessian_converged"]
put("sweep_csv", "hessian", ",".join(hcols) + "\r\n" + rows[0] + ",-0.5,10,-0.5,10,1\r\n" +
    rows[1] + ",nan,nan,nan,nan,0\r\n")
put("sweep_csv", "header-only", ",".join(cols[:5]) + ",r,Train_Accuracy,epochs,seconds,direction,index\n")

# ---------------------------------------------------------------- config.json
settings = {"data": {"spec": "mnist", "name": "mnist", "train_subset": 20000, "std": 1},
            "model": {"architecture": "784,128,10", "bias": True, "seed": 0},
            "protocol": {"optimizer": "adam", "lr": 0.0015, "reset_optimizer": True},
            "grid": {"beta": "0,0.02:0.09:0.0005", "direction": "up", "points": 142}}
config = {"pathfinder_version": "0.1.0", "command": "sweep",
          "arguments": ["pathfinder", "sweep", "--out", "runs/x"], "settings": settings}
put("config", "same", json.dumps(config, indent="\t"))
settings2 = json.loads(json.dumps(settings))
settings2["grid"]["points"] = 143
put("config", "other-grid", json.dumps(dict(config, settings=settings2)))
put("config", "no-settings", '{"command": "sweep", "x": [1, 2.5e3, null, false, "\\u00e9"]}')

# ----------------------------------------------------------------------- grid
for i, spec in enumerate(["0.01", "0,0.02:0.09:0.0005", "geom:1e-4:1:5", "0:1:0.25,0.5,3",
                          "1e-3,2e-3", "0:0:1"]):
    put("grid", "spec%d" % i, spec)
