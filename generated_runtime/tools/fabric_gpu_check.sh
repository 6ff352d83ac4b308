#!/usr/bin/env bash
# fabric_gpu_check.sh OUTDIR: builds the fabric subsystem on its own (cmake + ninja, the standalone project
# src/vbt/fabric/CMakeLists.txt: no vbt_core, no Python, no GoogleTest), runs every fabric test executable
# and the all-reduce benchmark, and writes OUTDIR/fabric_report.json and OUTDIR/fabric_log.txt.
# Test status: rc 0 = pass, rc 77 = not_run (needs a GPU / peers it did not have), anything else = fail.
# Exit status: 0 when the build succeeded and every test passed; 77 when nothing failed but some test did
# not run (no GPU, too few GPUs, no P2P); 1 when the build or any test failed. Environment: FABRIC_BUILD_DIR (default /tmp/fabric-gpu-build), CUDA_ARCH (default 90),
# FABRIC_JOBS (default: nproc), VBT_NCCL_LIBRARY (default: python3's nvidia/nccl/lib/libnccl.so.2).
set -u
OUT=${1:?usage: fabric_gpu_check.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FABRIC_BUILD_DIR:-/tmp/fabric-gpu-build}
LOG="$OUT/fabric_log.txt"
RES="$OUT/fabric_results.tsv"
: >"$LOG"
: >"$RES"
START=$(date +%s)

# NVLink multicast stays off (NCCL NVLS, torch symmetric memory, NVSHMEM).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

log() { echo "$@" | tee -a "$LOG"; }

if [ -z "${VBT_NCCL_LIBRARY:-}" ]; then
  VBT_NCCL_LIBRARY=$(python3 - <<'PY' 2>/dev/null
import os, site, sys
roots = list(getattr(site, "getsitepackages", lambda: [])()) + [site.getusersitepackages()] + sys.path
for r in roots:
    p = os.path.join(r or ".", "nvidia", "nccl", "lib", "libnccl.so.2")
    if os.path.exists(p):
        print(os.path.abspath(p)); break
PY
)
  [ -n "$VBT_NCCL_LIBRARY" ] && export VBT_NCCL_LIBRARY
fi
log "== fabric_gpu_check $(date -u +%FT%TZ) on $(hostname)"
log "root=$ROOT build=$BUILD VBT_NCCL_LIBRARY=${VBT_NCCL_LIBRARY:-<unset>}"
log "NCCL_NVLS_ENABLE=$NCCL_NVLS_ENABLE TORCH_SYMM_MEM_DISABLE_MULTICAST=$TORCH_SYMM_MEM_DISABLE_MULTICAST NVSHMEM_DISABLE_NVLS=$NVSHMEM_DISABLE_NVLS"
{ nvidia-smi -L && nvidia-smi topo -m; } >>"$LOG" 2>&1 || log "(nvidia-smi not available)"

BUILD_OK=0
B0=$(date +%s)
if cmake -G Ninja -S "$ROOT/src/vbt/fabric" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
     -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" >>"$LOG" 2>&1 &&
   ninja -C "$BUILD" -j"${FABRIC_JOBS:-$(nproc)}" >>"$LOG" 2>&1; then
  BUILD_OK=1
fi
BUILD_S=$(( $(date +%s) - B0 ))
log "build ok=$BUILD_OK in ${BUILD_S}s"

TESTS="fabric_host_test fabric_topology_test fabric_single_device_test fabric_peer_ops_test fabric_allreduce_test fabric_errors_test"
if [ "$BUILD_OK" = 1 ]; then
  for t in $TESTS; do
    T0=$(date +%s)
    timeout 240 "$BUILD/$t" >"$OUT/$t.out" 2>&1
    rc=$?
    log "---- $t rc=$rc ($(( $(date +%s) - T0 ))s)"
    cat "$OUT/$t.out" >>"$LOG"
    printf '%s\t%s\t%s\n' "$t" "$rc" "$(( $(date +%s) - T0 ))" >>"$RES"
  done
  T0=$(date +%s)
  timeout 240 "$BUILD/fabric_allreduce_bench" "$OUT/fabric_bench.json" >"$OUT/fabric_allreduce_bench.out" 2>&1
  rc=$?
  log "---- fabric_allreduce_bench rc=$rc ($(( $(date +%s) - T0 ))s)"
  cat "$OUT/fabric_allreduce_bench.out" >>"$LOG"
  printf '%s\t%s\t%s\n' "bench" "$rc" "$(( $(date +%s) - T0 ))" >>"$RES"
fi

python3 - "$OUT" "$BUILD_OK" "$BUILD_S" "$START" <<'PY'
import json, os, re, sys, time
out, build_ok, build_s, start = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(out, "fabric_results.tsv")) if l.strip()]
tests, bench_rc = [], None
for name, rc, secs in rows:
    rc = int(rc)
    if name == "bench":
        bench_rc = rc
        continue
    text = open(os.path.join(out, name + ".out"), errors="replace").read()
    status = "pass" if rc == 0 else ("not_run" if rc == 77 else ("timeout" if rc == 124 else "fail"))
    tests.append({"name": name, "status": status, "rc": rc, "seconds": int(secs),
                  "checks_passed": len(re.findall(r"^PASS ", text, re.M)),
                  "checks_failed": len(re.findall(r"^FAIL ", text, re.M)),
                  "failed": re.findall(r"^FAIL (.*)$", text, re.M)[:50],
                  "not_run": re.findall(r"^(?:NOTRUN|NEEDGPU) (.*)$", text, re.M)})
topology = None
p = os.path.join(out, "fabric_topology_test.out")
if os.path.exists(p):
    m = re.search(r"^TOPOLOGY_JSON (.*)$", open(p, errors="replace").read(), re.M)
    if m:
        try:
            topology = json.loads(m.group(1))
        except ValueError as e:
            topology = {"error": "unparsable TOPOLOGY_JSON: %s" % e}
bench = None
p = os.path.join(out, "fabric_bench.json")
if bench_rc == 0 and os.path.exists(p):
    try:
        bench = json.load(open(p))
        topology = topology or bench.get("topology")
    except ValueError as e:
        bench = {"error": "unparsable fabric_bench.json: %s" % e}
failed = [t["name"] for t in tests if t["status"] in ("fail", "timeout")]
report = {
    "schema": "vbt-fabric-report/1",
    "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "env": {k: os.environ.get(k) for k in ("NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST",
                                           "NVSHMEM_DISABLE_NVLS", "VBT_NCCL_LIBRARY")},
    "build": {"ok": build_ok, "seconds": build_s},
    "device_names": [d.get("name") for d in (topology or {}).get("devices", [])],
    "topology": topology,
    "tests": tests,
    "summary": {"passed": sum(t["status"] == "pass" for t in tests),
                "failed": len(failed), "not_run": sum(t["status"] == "not_run" for t in tests),
                "failed_tests": failed},
    "benchmark": {"rc": bench_rc, "status": "ran" if bench is not None else "not_run",
                  "nccl": bench and bench.get("nccl"), "timing": bench and bench.get("timing"),
                  "allreduce": bench and bench.get("allreduce"), "scaling": bench and bench.get("scaling")},
    "overall": "pass" if build_ok and not failed and tests and all(t["status"] == "pass" for t in tests)
               else ("fail" if (not build_ok or failed) else "incomplete (some tests not run)"),
    "total_seconds": int(time.time()) - start,
}
json.dump(report, open(os.path.join(out, "fabric_report.json"), "w"), indent=2)
print("overall:", report["overall"], "| summary:", report["summary"], "| devices:", report["device_names"])
PY
log "total $(( $(date +%s) - START ))s; report: $OUT/fabric_report.json"
[ "$BUILD_OK" = 1 ] || exit 1
grep -qvE $'\t(0|77)\t' "$RES" && exit 1
grep -qE $'\t77\t' "$RES" && exit 77
exit 0
