# one-off device call (not committed): build, probe the graph-pool reserved failure, racecheck, training
set -u
O=$1; mkdir -p $O
STEPS=none bash tests/gpu/gpu_session.sh $O/build >/dev/null 2>&1; tail -1 $O/build/summary.txt
B=/tmp/vbt-gpu-session; SITE=$B/site; export VBT_PLUGIN_DIR=$B/vbt_plugins
T=$PWD/generated_runtime/tests/py/cuda; G=$PWD/tests/gpu
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
py() { (cd /tmp && PYTHONPATH=$SITE:$G timeout "$@"); }
t0=$(date +%s)
PROBE_OUT=$O/probe-mc-gp.jsonl py 60 $SAN --tool memcheck --error-exitcode 9 python3 -m pytest -q --noconftest -p no:cacheprovider -p reserved_probe $T/test_cuda_graph_pools.py >$O/mc-gp.log 2>&1
echo "memcheck graph_pools alone rc=$? $(grep -E 'ERROR SUMMARY|passed|failed' $O/mc-gp.log | tail -2 | tr '\n' ' ') $(( $(date +%s)-t0 ))s"; t0=$(date +%s)
py 200 $SAN --tool racecheck --error-exitcode 9 python3 -m pytest -q --noconftest -p no:cacheprovider $T/test_cuda_norm_vec.py $T/test_cuda_elementwise_contig.py $T/test_cuda_graph_pools.py >$O/rc3.log 2>&1
echo "racecheck norm_vec+elementwise_contig+graph_pools rc=$? $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY|passed|failed' $O/rc3.log | tail -2 | tr '\n' ' ') $(( $(date +%s)-t0 ))s"; t0=$(date +%s)
timeout 100 python3 tests/gpu/gate_on_gpu.py training "$SITE" "$O/training" --opt workloads=reversal,minigpt,vit --opt steps=60 --opt window=10 --opt profile=paper >$O/training.txt 2>&1
echo "training rc=$? $(( $(date +%s)-t0 ))s"; cat $O/training/summary.txt | head -4
