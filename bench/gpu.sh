#!/usr/bin/env bash
# Run bench/gpu.py on a GPU machine, with the project's .venv when there is one, else with the machine's
# own python3 (a GPU image with torch, torchvision, numpy, scipy, pillow, pyyaml, pytest, tensorboard, but
# not the project's other dependencies) and the missing pure-Python ones carried as wheels in .whl/.
#
#   bench/gpu.sh prepare [--with-snakemake]   where PyPI is reachable: download those wheels into .whl/
#                                             (CPython 3.12, manylinux x86-64; .whl/ is git-ignored)
#   bench/gpu.sh run [bench/gpu.py options]   on the GPU machine: install .whl/ into /tmp/site if present,
#                                             then bench/gpu.py --device cuda, results in $OUT (or
#                                             results/gpu/) as gpu.json and gpu.md
#
# bpy (Blender, 800 MB, CPython 3.11 only) cannot travel as a wheel: without the project's .venv the
# render part reports "skipped: bpy ... not importable".
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1)
PLATFORMS=(manylinux_2_39_x86_64 manylinux_2_34_x86_64 manylinux_2_28_x86_64 manylinux_2_17_x86_64
           manylinux2014_x86_64)

prepare() {
    local packages=("${WHEELS[@]}")
    if [[ "${1:-}" == "--with-snakemake" ]]; then
        packages+=(snakemake==9.27.1)  # with its dependencies (pip resolves them for CPython 3.12)
    fi
    local platform_options=()
    for platform in "${PLATFORMS[@]}"; do platform_options+=(--platform "$platform"); done
    local python=python3
    [[ -x .venv/bin/python ]] && python=.venv/bin/python
    "$python" -m pip download --only-binary=:all: --python-version 3.12 --implementation cp \
        "${platform_options[@]}" -d .whl $([[ "${1:-}" == "--with-snakemake" ]] || echo --no-deps) \
        "${packages[@]}"
    du -sh .whl
}

run() {
    local python=python3
    if [[ -x .venv/bin/python ]] && .venv/bin/python -c "import torch" 2>/dev/null; then
        python=.venv/bin/python
    elif compgen -G ".whl/*.whl" >/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl
        export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    local output="${OUT:-results/gpu}"
    mkdir -p "$output"
    exec "$python" bench/gpu.py --device cuda --output "$output/gpu.json" "$@"
}

command="${1:-run}"
shift || true
case "$command" in
    prepare) prepare "$@" ;;
    run) run "$@" ;;
    *) echo "usage: bench/gpu.sh prepare [--with-snakemake] | run [bench/gpu.py options]" >&2; exit 2 ;;
esac
