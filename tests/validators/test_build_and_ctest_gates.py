"""Build and CTest gates on a tiny scikit-build-core + GoogleTest fixture runtime (about 6 s per build)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from harness.interfaces import GateConfig
from tests.validators.gate_fixture_projects import make_runtime, write_files
from validators.build_gate import BuildGate
from validators.chain import run_gates
from validators.ctest_gate import CTestGate


def test_compiler_errors_fail_the_build_with_file_and_line(tmp_path, make_ctx):
    cmake = "cmake_minimum_required(VERSION 3.18)\nproject(vibetensor LANGUAGES CXX)\nadd_library(core src/core.cpp)\n"
    repo = make_runtime(tmp_path / "repo", core_cpp="int vbt_answer() { return 42 }\n", cmake=cmake)
    result = BuildGate().run(make_ctx(repo))
    assert result.status == "fail"
    assert result.metrics["compiler_errors"] >= 1
    assert "core.cpp:1:" in result.summary and "error:" in result.summary
    assert len(result.summary) <= 2000


def test_sitecustomize_in_the_build_output_fails_the_build(tmp_path, make_ctx):
    cmake = ("cmake_minimum_required(VERSION 3.18)\nproject(vibetensor NONE)\n"  # no compiler: fast
             "install(FILES hijack/sitecustomize.py DESTINATION ${SKBUILD_PLATLIB_DIR})\n")
    repo = make_runtime(tmp_path / "repo", cmake=cmake,
                        extra={"generated_runtime/hijack/sitecustomize.py": "print('owned')\n"})
    ctx = make_ctx(repo)
    result = BuildGate().run(ctx)
    assert result.status == "fail"
    assert "sitecustomize.py" in result.summary
    assert "site_dir" not in ctx.state


def test_missing_runtime_fails_clearly(tmp_path, make_ctx):
    (tmp_path / "empty").mkdir()
    result = BuildGate().run(make_ctx(tmp_path / "empty"))
    assert result.status == "fail" and "pyproject.toml" in result.summary


def _cmake_project(root: Path, tests: dict[str, str]) -> Path:
    """A plain CMake project (no compiler needed) whose tests are cmake -E commands; returns its build folder."""
    lines = ["cmake_minimum_required(VERSION 3.18)", "project(fixture NONE)", "enable_testing()"]
    lines += [f"add_test(NAME {name} COMMAND ${{CMAKE_COMMAND}} {command})" for name, command in tests.items()]
    write_files(root, {"CMakeLists.txt": "\n".join(lines) + "\n"})
    build = root / "build"
    subprocess.run(["cmake", "-S", str(root), "-B", str(build)], check=True, capture_output=True)
    return build


def test_ctest_pass_fail_and_zero_tests(tmp_path, make_ctx):
    passing = _cmake_project(tmp_path / "p", {"ok_one": "-E true", "ok_two": "-E echo hi"})
    result = CTestGate().run(make_ctx(tmp_path, state={"build_dir": str(passing)}))
    assert result.status == "pass", result.summary
    assert result.metrics["tests"] == 2

    failing = _cmake_project(tmp_path / "f", {"ok_one": "-E true", "broken": "-E false"})
    result = CTestGate().run(make_ctx(tmp_path, state={"build_dir": str(failing)}))
    assert result.status == "fail"
    assert result.metrics["failures"] == 1 and result.metrics["passed"] == 1
    assert "broken" in result.summary and "ok_one" not in result.summary.split("\n", 1)[1]

    empty = _cmake_project(tmp_path / "z", {})
    result = CTestGate().run(make_ctx(tmp_path, state={"build_dir": str(empty)}))
    assert result.status == "fail"
    assert "no tests ran" in result.summary


def _with_skip_code(build: Path, name: str) -> None:
    """Mark test `name` as skipped when it exits 77 (as the GPU tests do on a machine without a GPU)."""
    cml = build.parent / "CMakeLists.txt"
    cml.write_text(cml.read_text() + f"set_tests_properties({name} PROPERTIES SKIP_RETURN_CODE 77)\n")
    subprocess.run(["cmake", "-S", str(build.parent), "-B", str(build)], check=True, capture_output=True)


def test_ctest_include_names_the_spec_tests_and_skips_alone_do_not_pass(tmp_path, make_ctx):
    write_files(tmp_path / "i", {"skip77.sh": "exit 77\n"})
    proj = _cmake_project(tmp_path / "i", {"core_ok": "-E true", "fabric_host": "-E true",
                                          "fabric_gpu": f"-E env sh {tmp_path / 'i' / 'skip77.sh'}"})
    _with_skip_code(proj, "fabric_gpu")
    result = CTestGate().run(make_ctx(tmp_path, state={"build_dir": str(proj)}, options={"include": "^fabric_"}))
    assert result.status == "pass", result.summary
    assert result.metrics["tests"] == 2 and result.metrics["passed"] == 1 and result.metrics["skipped"] == 1

    # the tree without the spec's tests: nothing matches, so the spec's gate fails
    result = CTestGate().run(make_ctx(tmp_path, state={"build_dir": str(proj)}, options={"include": "^nothing_"}))
    assert result.status == "fail" and "no tests ran" in result.summary

    # only skipped tests match: not a pass
    result = CTestGate().run(make_ctx(tmp_path, state={"build_dir": str(proj)}, options={"include": "^fabric_gpu"}))
    assert result.status == "fail" and "min_passed" in result.summary


def test_ctest_without_a_build_folder_is_no_tests_ran(tmp_path, make_ctx):
    result = CTestGate().run(make_ctx(tmp_path, state={"build_dir": str(tmp_path / "nowhere")}))
    assert result.status == "fail" and "no tests ran" in result.summary


def test_gate_chain_builds_runs_gtest_and_pytest_caches_and_rebuilds_incrementally(tmp_path, make_ctx):
    repo = make_runtime(tmp_path / "repo", extra={
        "generated_runtime/tests/py/test_answer.py": "import vibetensor\ndef test_answer():\n"
                                                     "    assert vibetensor.ANSWER == 42\n"})
    configs = [GateConfig("build"), GateConfig("ctest"), GateConfig("pytest")]
    contexts = []

    def ctx_factory(cfg):
        contexts.append(make_ctx(repo, cache_dir=tmp_path / "cache"))
        return contexts[-1]

    first = run_gates(configs, ctx_factory)
    assert [(r.name, r.status) for r in first] == [("build", "pass"), ("ctest", "pass"), ("pytest", "pass")], \
        [r.summary for r in first]
    build_ctx = contexts[0]
    site = Path(build_ctx.state["site_dir"])
    assert sorted(p.name for p in site.iterdir()) == ["vibetensor", "vibetensor-0.0.1.dist-info"]
    assert Path(build_ctx.state["build_dir"]) == tmp_path / "cache" / "build"
    assert contexts[2].state["site_dir"] == str(site)  # handed on to pytest
    assert first[0].metrics["compiler_errors"] == 0 and Path(first[0].log_path).is_file()
    assert first[1].metrics["tests"] == 1 and first[1].metrics["passed"] == 1
    assert first[2].metrics["passed"] == 1

    again = run_gates(configs, ctx_factory)
    assert all(r.cached and r.passed for r in again)

    # A one-line C++ change breaks the gtest: incremental rebuild in the persistent build folder, ctest fails fast.
    (repo / "generated_runtime/src/core.cpp").write_text("int vbt_answer() { return 41; }\n")
    changed = run_gates(configs, ctx_factory)
    assert [(r.name, r.status, r.cached) for r in changed] == [("build", "pass", False), ("ctest", "fail", False)]
    assert changed[1].metrics["failures"] == 1 and "core_test" in changed[1].summary
