"""Pytest gate: pass/fail verdicts and the ways a candidate could try to forge them."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.validators.gate_fixture_projects import write_files
from validators.pytest_gate import PytestGate

TESTS = "generated_runtime/tests/py"


@pytest.fixture
def site(tmp_path):
    """A stand-in for the build gate's site folder: a vibetensor package with ANSWER = 41 (the wrong answer)."""
    write_files(tmp_path / "site", {"vibetensor/__init__.py": "ANSWER = 41\n"})
    return str(tmp_path / "site")


def candidate(tmp_path, files: dict[str, str], name: str = "candidate") -> Path:
    root = tmp_path / name
    write_files(root, {f"{TESTS}/{rel}": text for rel, text in files.items()})
    return root


def run_gate(make_ctx, root, site, **kw):
    ctx = make_ctx(root, state={"site_dir": site}, **kw)
    return PytestGate().run(ctx), ctx


def test_passing_and_failing_suites(tmp_path, make_ctx, site):
    ok = candidate(tmp_path, {"test_ok.py": "import vibetensor\ndef test_import():\n    assert vibetensor.ANSWER > 0\n"},
                   "ok")
    result, _ = run_gate(make_ctx, ok, site)
    assert result.status == "pass", result.summary
    assert result.metrics["tests"] == 1 and result.metrics["passed"] == 1

    bad = candidate(tmp_path, {"test_bad.py": "import vibetensor\n"
                               "def test_answer():\n    assert vibetensor.ANSWER == 42\n"
                               "def test_fine():\n    pass\n"}, "bad")
    result, _ = run_gate(make_ctx, bad, site)
    assert result.status == "fail"
    assert result.metrics["failures"] == 1 and result.metrics["passed"] == 1
    assert "test_answer" in result.summary and "assert 41 == 42" in result.summary


def test_zero_tests_collected_fails(tmp_path, make_ctx, site):
    root = candidate(tmp_path, {"helpers.py": "X = 1\n"})
    result, _ = run_gate(make_ctx, root, site)
    assert result.status == "fail" and "no tests ran" in result.summary


def test_missing_site_is_an_error(tmp_path, make_ctx):
    root = candidate(tmp_path, {"test_ok.py": "def test_x():\n    pass\n"})
    assert PytestGate().run(make_ctx(root)).status == "error"


FORCE_PASS_CONFTEST = """\
import pytest
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    report.longrepr = None
"""


# The forgery tests run in one process and with pytest-xdist workers (Note [Parallel pytest in the gate]): in a
# worker, the forging code runs one process further from pytest's controller, which writes the report.
WORKERS = pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "xdist-2"])

# How forging test code finds the report path: in its own command line (one process) or its parent's (a worker).
FIND_JUNIT = """\
def junit_path():
    for pid in (os.getpid(), os.getppid()):
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = [a.decode() for a in f.read().split(b"\\0")]
        for i, a in enumerate(args):
            if a == "--junitxml":
                return args[i + 1]
            if a.startswith("--junitxml="):
                return a.split("=", 1)[1]
    raise AssertionError("no --junitxml found")
"""


@WORKERS
def test_candidate_conftest_forcing_passes_is_ignored(tmp_path, make_ctx, site, workers):
    root = candidate(tmp_path, {"conftest.py": FORCE_PASS_CONFTEST,
                                "test_bad.py": "def test_wrong():\n    assert 1 == 2\n"})
    write_files(root, {"generated_runtime/conftest.py": FORCE_PASS_CONFTEST, "conftest.py": FORCE_PASS_CONFTEST,
                       "generated_runtime/pytest.ini": "[pytest]\naddopts = -p no:junitxml\n"})
    result, _ = run_gate(make_ctx, root, site, options={"workers": workers})
    assert result.status == "fail", result.summary
    assert result.metrics["workers"] == workers
    assert "test_wrong" in result.summary


FAKE_PASS_XML = ('<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="1" failures="0" errors="0">'
                 '<testcase classname="t" name="test_forged"/></testsuite></testsuites>')


@WORKERS
def test_fake_junit_in_the_tree_or_result_folder_does_not_pass(tmp_path, make_ctx, site, workers):
    forge = f"""\
import os, sys
FAKE = {FAKE_PASS_XML!r}
{FIND_JUNIT}
def test_forge_then_fail():
    junit = junit_path()
    for path in (junit, os.path.join(os.path.dirname(junit), "extra.xml"), "pytest.xml", "ctest.xml"):
        with open(path, "w") as f:
            f.write(FAKE)
    assert False, "the real verdict"
"""
    root = candidate(tmp_path, {"test_forge.py": forge})
    write_files(root, {"generated_runtime/pytest.xml": FAKE_PASS_XML})
    result, _ = run_gate(make_ctx, root, site, options={"workers": workers})
    assert result.status == "error"
    assert "unexpected files in the result folder: extra.xml" in result.summary


DAEMON_TEST = """\
import os, sys, time
FAKE = {fake!r}
{find_junit}
def test_spawn_forger():
    junit = junit_path()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            with open({pidfile!r}, "w") as f:
                f.write(str(os.getpid()))
            while True:
                try:
                    with open(junit, "w") as f:
                        f.write(FAKE)
                except OSError:
                    pass
                time.sleep(0.001)
        os._exit(0)
    time.sleep(0.2)
def test_really_fails():
    assert False
"""


@WORKERS
def test_daemon_rewriting_the_result_is_dead_and_the_verdict_stays_fail(tmp_path, make_ctx, site, workers):
    pidfile = tmp_path / "daemon.pid"
    root = candidate(tmp_path, {"test_daemon.py": DAEMON_TEST.format(fake=FAKE_PASS_XML, pidfile=str(pidfile),
                                                                     find_junit=FIND_JUNIT)})
    result, _ = run_gate(make_ctx, root, site, options={"workers": workers})
    daemon_pid = int(pidfile.read_text())
    assert not Path(f"/proc/{daemon_pid}").exists(), "the forging daemon outlived the gate"
    assert result.status == "fail", result.summary
    assert result.metrics["failures"] == 1 and result.metrics["tests"] == 2
    assert "[vt_pytest_guard] killed 1 stray processes" in Path(result.log_path).read_text()


def test_protected_test_edited_by_candidate_is_replaced_by_trusted_copy(tmp_path, make_ctx, site):
    trusted = candidate(tmp_path, {"test_accept.py": "import vibetensor\n"
                                   "def test_answer():\n    assert vibetensor.ANSWER == 42\n"}, "trusted")
    root = candidate(tmp_path, {"test_accept.py": "def test_answer():\n    pass\n",
                                "test_extra_accept.py": "def test_sneaky():\n    pass\n",
                                "test_own.py": "def test_own():\n    pass\n"})
    result, _ = run_gate(make_ctx, root, site, trusted_root=trusted, protected=[f"{TESTS}/test_*accept.py"])
    assert result.status == "fail", result.summary
    assert "assert 41 == 42" in result.summary
    assert (root / TESTS / "test_accept.py").read_text() == (trusted / TESTS / "test_accept.py").read_text()
    assert not (root / TESTS / "test_extra_accept.py").exists()
    assert result.metrics["protected_restored"] == 2 and result.metrics["tests"] == 2


@pytest.mark.parametrize("glob", [f"{TESTS}/accept/**", "generated_runtime/tests/**/accept/**"])
def test_protected_folder_globs_restore_every_file_under_them(tmp_path, make_ctx, site, glob):
    # The specs protect whole folders ('tests/**/cuda/**'); Path.glob on Python 3.11 yields only folders for a
    # glob ending in '**', which once made this gate restore nothing.
    trusted = candidate(tmp_path, {"accept/test_a.py": "import vibetensor\n"
                                   "def test_answer():\n    assert vibetensor.ANSWER == 42\n",
                                   "accept/deep/test_b.py": "def test_b():\n    pass\n"}, "trusted")
    root = candidate(tmp_path, {"accept/test_a.py": "def test_answer():\n    pass\n",
                                "accept/deep/test_b.py": "def test_b():\n    pass\n",
                                "accept/deep/test_sneaky.py": "def test_sneaky():\n    pass\n",
                                "test_own.py": "def test_own():\n    pass\n"})
    result, _ = run_gate(make_ctx, root, site, trusted_root=trusted, protected=[glob, f"!{TESTS}/accept/nothing.py"])
    assert result.status == "fail", result.summary
    assert "assert 41 == 42" in result.summary
    assert (root / TESTS / "accept/test_a.py").read_text() == (trusted / TESTS / "accept/test_a.py").read_text()
    assert not (root / TESTS / "accept/deep/test_sneaky.py").exists() and (root / TESTS / "test_own.py").exists()
    assert result.metrics["protected_restored"] == 2 and result.metrics["tests"] == 3


def test_protected_folder_globs_in_a_git_checkout_skip_what_git_ignores(tmp_path):
    # as the runner installs them (harness.worktree.runtime_files): an ignored __pycache__ file is not a protected
    # file, so the restore neither copies nor deletes it; an untracked test is one, and goes
    import subprocess

    from validators.pytest_gate import protected_files, restore_protected

    trusted = candidate(tmp_path, {"accept/test_a.py": "x = 1\n"}, "trusted")
    root = candidate(tmp_path, {"accept/test_a.py": "x = 2\n", "accept/__pycache__/test_a.pyc": "cache",
                                "accept/test_new.py": "y = 1\n"})
    for r in (trusted, root):
        (r / ".gitignore").write_text("__pycache__/\n")
        subprocess.run(["git", "init", "-q", str(r)], check=True)
    glob = [f"{TESTS}/accept/**"]
    assert protected_files(root, glob) == {f"{TESTS}/accept/test_a.py", f"{TESTS}/accept/test_new.py"}
    assert restore_protected(root, trusted, glob) == [f"{TESTS}/accept/test_a.py", f"{TESTS}/accept/test_new.py"]
    assert (root / TESTS / "accept/__pycache__/test_a.pyc").exists()
    assert (root / TESTS / "accept/test_a.py").read_text() == "x = 1\n"


def test_protected_digest_covers_folder_globs(tmp_path):
    from validators.pytest_gate import protected_digest

    trusted = candidate(tmp_path, {"accept/test_a.py": "x = 1\n"}, "trusted")
    before = protected_digest(trusted, [f"{TESTS}/**"])
    (trusted / TESTS / "accept/test_a.py").write_text("x = 2\n")
    assert protected_digest(trusted, [f"{TESTS}/**"]) != before
    assert protected_digest(trusted, [f"{TESTS}/**", f"!{TESTS}/accept/*"]) == protected_digest(trusted, [])


def test_protected_glob_escaping_the_tree_is_an_error(tmp_path, make_ctx, site):
    root = candidate(tmp_path, {"test_ok.py": "def test_x():\n    pass\n"})
    result, _ = run_gate(make_ctx, root, site, options={"protected": ["../outside/*.py"]})
    assert result.status == "error" and "'..'" in result.summary
