#!/usr/bin/env bash
# Set-up shared by the README commands and CI: system packages (when root), a virtual environment with the
# harness, PyTorch CPU for parity, and the runtime's build tools. Idempotent; safe to run again.
set -euo pipefail
VENV="${1:-.venv}"
cd "$(dirname "$0")/.."

need_apt=()
for pkg in libgtest-dev libopenblas-dev ccache ninja-build chromium chromium-driver; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install these Debian packages: ${need_apt[*]}" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
# torch==2.13.0 is the CPU build (from the local wheel store where the machine has one).
"$PY" -m pip install -q --disable-pip-version-check "torch==2.13.0" -e ".[test,runtime]"
touch "$VENV/.ready"
echo "setup: ready ($("$PY" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__)'))"
