#!/usr/bin/env bash
# Incremental developer build of vibetensor (the gates use the pip/scikit-build-core build instead).
#   bash generated_runtime/tools/dev_build.sh BUILD_DIR [extra cmake -D options...]
# Configures once (Ninja, ccache, VBT_BUILD_TESTS=ON, the Python extension), builds with -j2, and assembles
# BUILD_DIR/site/vibetensor: symlinks to python/vibetensor's files plus the built _C extension. The last line
# printed is the site dir to put on PYTHONPATH. ctest --test-dir BUILD_DIR runs the C++ tests.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:?usage: dev_build.sh BUILD_DIR [cmake -D options]}"
shift
py="${PYTHON:-$(command -v python3)}"
[ -x "$here/../.venv/bin/python" ] && py="${PYTHON:-$here/../.venv/bin/python}"
mkdir -p "$build"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVBT_BUILD_PYTHON=ON -DVBT_BUILD_TESTS=ON \
        -DPython_EXECUTABLE="$py" "$@" >"$build/configure.log" || { cat "$build/configure.log"; exit 1; }
fi
cmake --build "$build" -j "${VBT_JOBS:-2}" >&2
site="$build/site"
rm -rf "$site"
mkdir -p "$site"
cp -rs "$here/python/vibetensor" "$site/"
find "$build" -maxdepth 2 -name '_C*.so' -exec cp {} "$site/vibetensor/" \;
echo "$site"
