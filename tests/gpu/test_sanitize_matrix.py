"""sanitize_matrix.sh on the CPU: a fake sanitizer stands in for compute-sanitizer, so the job file's parsing
(shell-quoted pytest options, test files resolved under generated_runtime/tests/py/cuda or, with a folder, under
generated_runtime/tests/py), the per-job time limit
and the exit statuses in matrix.txt are checked without a GPU."""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "gpu" / "sanitize_matrix.sh"

FAKE = r"""#!/usr/bin/env bash
# fake compute-sanitizer: --tool T --error-exitcode N python3 -m pytest ARGS...
tool=$2; shift 4
printf '%s\n' "$@" > "$FAKE_DIR/args-$tool-$$.txt"
for a in "$@"; do
  case "$a" in *slow*) sleep 30 ;; *hazard*) echo "========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)"; exit 9 ;; esac
done
echo "3 passed in 0.10s"
echo "========= ERROR SUMMARY: 0 errors"
"""


def _run(tmp_path, jobs, limit="20"):
    fake = tmp_path / "fake-sanitizer"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    jobfile = tmp_path / "jobs"
    jobfile.write_text(jobs)
    out = tmp_path / "out"
    env = dict(os.environ, SANITIZE_NO_BUILD="1", SANITIZER=str(fake), FAKE_DIR=str(tmp_path), JOB_LIMIT_S=limit,
               VBT_GPU_BUILD=str(tmp_path / "build"))
    r = subprocess.run(["bash", str(SCRIPT), str(out), str(jobfile)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[0]: ln for ln in (out / "matrix.txt").read_text().splitlines()}
    return out, lines


def test_jobs_run_with_quoted_pytest_options_and_resolved_test_files(tmp_path):
    out, lines = _run(tmp_path, '# a comment\n\nj1 memcheck test_cuda_ops.py -k "add or mul"\n'
                                'j2 racecheck test_cuda_sort.py::test_msort_and_out\n'
                                'j3 synccheck autograd/test_view_grads_device.py -k cuda\n')
    assert set(lines) == {"j1", "j2", "j3"}
    assert "j1 memcheck rc=0" in lines["j1"] and "3 passed" in lines["j1"] and "ERROR SUMMARY: 0 errors" in lines["j1"]
    args = {p.name.split("-")[1]: p.read_text().splitlines() for p in tmp_path.glob("args-*.txt")}
    cuda = ROOT / "generated_runtime" / "tests" / "py" / "cuda"
    assert args["memcheck"][-3:] == [str(cuda / "test_cuda_ops.py"), "-k", "add or mul"]
    assert args["memcheck"][:3] == ["python3", "-m", "pytest"] and "not python_lifetime" in args["memcheck"]
    assert args["racecheck"][-1] == str(cuda / "test_cuda_sort.py") + "::test_msort_and_out"
    assert args["synccheck"][-3:] == [str(cuda.parent / "autograd" / "test_view_grads_device.py"), "-k", "cuda"]
    assert (out / "j1.log").is_file()


def test_a_failing_job_and_a_job_out_of_time_are_reported_apart(tmp_path):
    _, lines = _run(tmp_path, "ok memcheck test_a.py\nbad racecheck test_hazard.py\nlate memcheck test_slow.py\n",
                    limit="2")
    assert "rc=0" in lines["ok"]
    assert "rc=9" in lines["bad"] and "1 hazard" in lines["bad"]
    assert "rc=124" in lines["late"]
