"""Tiny fixture projects for the gate tests, written into tmp dirs.

The fixture "runtime" is a scikit-build-core project with one C++ GoogleTest and a one-file ``vibetensor`` package,
so the build, ctest and pytest gates run their real commands in seconds (the real runtime is too slow here).
"""
from __future__ import annotations

import textwrap
from pathlib import Path

RUNTIME_PYPROJECT = """\
[build-system]
requires = ["scikit-build-core"]
build-backend = "scikit_build_core.build"

[project]
name = "vibetensor"
version = "0.0.1"

[tool.scikit-build]
wheel.packages = ["python/vibetensor"]
"""

RUNTIME_CMAKE = """\
cmake_minimum_required(VERSION 3.18)
project(vibetensor LANGUAGES CXX)
option(VBT_BUILD_TESTS "build the C++ tests" OFF)
add_library(vbt_core STATIC src/core.cpp)
if(VBT_BUILD_TESTS)
  enable_testing()
  find_package(GTest REQUIRED)
  add_executable(core_test tests/cpp/core_test.cpp)
  target_link_libraries(core_test PRIVATE vbt_core GTest::gtest_main)
  add_test(NAME core_test COMMAND core_test)
endif()
"""


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def make_runtime(repo: Path, core_cpp: str = "int vbt_answer() { return 42; }\n", extra: dict | None = None,
                 cmake: str = RUNTIME_CMAKE) -> Path:
    """A repository-shaped tree whose generated_runtime is a minimal scikit-build-core + GoogleTest project."""
    files = {
        "generated_runtime/pyproject.toml": RUNTIME_PYPROJECT,
        "generated_runtime/CMakeLists.txt": cmake,
        "generated_runtime/src/core.cpp": core_cpp,
        "generated_runtime/tests/cpp/core_test.cpp":
            "#include <gtest/gtest.h>\nint vbt_answer();\nTEST(Core, Answer) { EXPECT_EQ(vbt_answer(), 42); }\n",
        "generated_runtime/python/vibetensor/__init__.py": "ANSWER = 42\n",
        **(extra or {}),
    }
    write_files(repo, files)
    return repo
