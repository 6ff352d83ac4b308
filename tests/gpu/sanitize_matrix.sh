#!/usr/bin/env bash
# compute-sanitizer over many CUDA test files at once, on the lent GPU machine (device tool), from the repository root:
#   bash tests/gpu/sanitize_matrix.sh OUTDIR JOBFILE
# JOBFILE has one job per line: "NAME TOOL ARG..." (TOOL memcheck|racecheck|synccheck|initcheck; an ARG test_*.py[::node]
# names a file under generated_runtime/tests/py/cuda, DIR/test_*.py one under generated_runtime/tests/py, other ARGs go to pytest as they are, shell-quoted: -k "a or b"). Builds once
# through gpu_session.sh (STEPS=none), then runs every job in parallel, each in its own process under its own time
# limit (JOB_LIMIT_S, default 380): the sanitizer serialises each process's kernels, so one process per job keeps the
# GPU and the host's cores busy. -> OUTDIR/NAME.log per job, OUTDIR/matrix.txt (one line per job: exit status,
# seconds, pytest's summary, the sanitizer's ERROR SUMMARY). Exit status 9 in a job means the tool reported errors;
# 124 means it ran out of time (its log shows how far it got). SANITIZER overrides the compute-sanitizer binary.
set -u
OUT=${1:?usage: sanitize_matrix.sh OUTDIR JOBFILE}
JOBS=${2:?usage: sanitize_matrix.sh OUTDIR JOBFILE}
mkdir -p "$OUT"
B=${VBT_GPU_BUILD:-/tmp/vbt-gpu-session}
if [ -z "${SANITIZE_NO_BUILD:-}" ]; then  # SANITIZE_NO_BUILD=1: use the site already built in $VBT_GPU_BUILD
  STEPS=none bash tests/gpu/gpu_session.sh "$OUT/build" >"$OUT/build.txt" 2>&1 || { cat "$OUT/build.txt"; exit 1; }
  grep -q "build ok" "$OUT/build/summary.txt" || { cat "$OUT/build.txt"; exit 1; }
fi
SITE=$B/site
export VBT_PLUGIN_DIR=$B/vbt_plugins
PYP=$SITE
python3 -c "import pytest" 2>/dev/null || PYP=$SITE:$PWD/generated_runtime/tests/py/cuda/build/pylib
SAN=${SANITIZER:-$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)}
PY=$PWD/generated_runtime/tests/py
T=$PY/cuda
LIMIT=${JOB_LIMIT_S:-380}
pids=()
while read -r name tool rest; do
  [ -z "$name" ] || [[ "$name" == \#* ]] && continue
  eval "words=($rest)"  # shell quoting: -k "a or b"
  args=()
  for a in "${words[@]}"; do
    case "$a" in
      test_*.py | test_*.py::*) args+=("$T/$a") ;;
      */test_*.py | */test_*.py::*) args+=("$PY/$a") ;;  # a file elsewhere under tests/py: autograd/test_x.py
      *) args+=("$a") ;;
    esac
  done
  (
    t0=$(date +%s)
    cd /tmp && PYTHONPATH=$PYP VBT_TEST_BUSY_N=256 VBT_TEST_BUSY_ITERS=1 timeout "$LIMIT" "$SAN" --tool "$tool" \
      --error-exitcode 9 python3 -m pytest -q --noconftest -p no:cacheprovider -m "not python_lifetime" "${args[@]}" \
      >"$OUT/$name.log" 2>&1
    rc=$?
    echo "$name $tool rc=$rc in $(( $(date +%s) - t0 ))s: $(grep -E '^[0-9]+ (passed|failed)|ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$name.log" | tail -3 | tr '\n' ' ')" >"$OUT/$name.line"
  ) &
  pids+=($!)
done <"$JOBS"
wait "${pids[@]}"
cat "$OUT"/*.line | sort >"$OUT/matrix.txt"
rm -f "$OUT"/*.line
cat "$OUT/matrix.txt"
if [ -n "${PACK:-}" ]; then
  tar czf "$PACK" -C "$(dirname "$OUT")" "$(basename "$OUT")" && find "$OUT" -type f ! -name matrix.txt -delete
fi
