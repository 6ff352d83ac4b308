"""Parse JUnit XML written by pytest (``--junitxml``) and CTest (``--output-junit``) into counts and failures.

Policy: the harness counts the ``<testcase>`` elements itself and ignores the summary attributes a writer put on
``<testsuite>`` (a forged file could claim anything there). A test case is failed when it has a ``<failure>``
child, errored with ``<error>``, skipped with ``<skipped>`` (or CTest's status "disabled"/"notrun"), else passed.
A missing, oversized or malformed file raises ``JUnitError``: the gate reports "error", never "pass".
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

MAX_BYTES = 64 * 1024 * 1024
EXCERPT_CHARS = 600  # per failed test, in summaries


class JUnitError(Exception):
    """The result file is missing or not valid JUnit XML."""


@dataclass
class FailedCase:
    name: str  # "classname::name" for pytest, the test name for CTest
    kind: str  # "failure" | "error"
    message: str
    output: str  # the failure text or the captured output, possibly long


@dataclass
class JUnitReport:
    tests: int = 0
    passed: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    failed: list[FailedCase] = field(default_factory=list)
    time_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.tests > 0 and self.failures == 0 and self.errors == 0

    def metrics(self) -> dict:
        return {"tests": self.tests, "passed": self.passed, "failures": self.failures, "errors": self.errors,
                "skipped": self.skipped}


def parse_junit(path: Path) -> JUnitReport:
    path = Path(path)
    if not path.is_file():
        raise JUnitError(f"JUnit file {path} was not written")
    if path.stat().st_size > MAX_BYTES:
        raise JUnitError(f"JUnit file {path} is larger than {MAX_BYTES} bytes")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise JUnitError(f"JUnit file {path} is not valid XML: {e}") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitError(f"JUnit file {path} has root <{root.tag}>, expected <testsuites> or <testsuite>")
    report = JUnitReport()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    if root.tag == "testsuites" and not suites:
        raise JUnitError(f"JUnit file {path} has no <testsuite>")
    for suite in suites:
        report.time_s += _float(suite.get("time"))
        for case in suite.iter("testcase"):
            _count_case(case, report)
    return report


def _count_case(case: ET.Element, report: JUnitReport) -> None:
    report.tests += 1
    classname, name = case.get("classname", ""), case.get("name", "?")
    full = f"{classname}::{name}" if classname and classname != name else name
    failure, error = case.find("failure"), case.find("error")
    outcome = failure if failure is not None else error
    if outcome is not None:
        kind = "failure" if failure is not None else "error"
        text = (outcome.text or "").strip() or (case.findtext("system-out") or "").strip()
        report.failed.append(FailedCase(full, kind, outcome.get("message", ""), text))
        if kind == "failure":
            report.failures += 1
        else:
            report.errors += 1
    elif case.find("skipped") is not None or case.get("status") in ("disabled", "notrun"):
        report.skipped += 1
    else:
        report.passed += 1


def _float(text: str | None) -> float:
    try:
        return float(text or 0.0)
    except ValueError:
        return 0.0


def summarize(report: JUnitReport, limit: int = 2000) -> str:
    """Short text an agent sees: the counts, then the first failed tests with an excerpt of their error."""
    head = (f"{report.tests} tests: {report.passed} passed, {report.failures} failed, {report.errors} errors, "
            f"{report.skipped} skipped")
    parts = [head]
    used = len(head)
    for i, case in enumerate(report.failed):
        excerpt = _excerpt(case)
        block = f"\n{case.kind.upper()} {case.name}" + (f": {case.message}" if case.message else "") + \
            (f"\n{excerpt}" if excerpt else "")
        if used + len(block) > limit:
            parts.append(f"\n... and {len(report.failed) - i} more failed tests (see the log)")
            break
        parts.append(block)
        used += len(block)
    return "".join(parts)


def _excerpt(case: FailedCase) -> str:
    """The most telling lines of a failure: pytest's "E " lines and file:line, else the tail of the output."""
    lines = [ln for ln in case.output.splitlines() if ln.strip()]
    marked = [ln for ln in lines if ln.startswith("E ") or ": error" in ln or "Failure" in ln or ".py:" in ln]
    chosen = marked[-8:] if marked else lines[-8:]
    text = "\n".join("  " + ln.strip() for ln in chosen)
    return text if len(text) <= EXCERPT_CHARS else text[-EXCERPT_CHARS:]


def junit_verdict(tool: str, run, folder: Path, result_file: str, started_ns: int, base: dict, result,
                  zero_tests: str, min_passed: int = 0, timeout_s: float = 0.0):
    """The shared verdict of the JUnit-driven gates (ctest, pytest) once the sandboxed command has ended: a launch
    failure is an error, a timeout a fail; the result file must pass the sandbox's freshness checks and parse;
    zero tests, any failure, or fewer than min_passed passes fail; a non-zero exit despite a clean XML is an
    error (trust neither). result(status, summary, **metrics) builds the GateResult."""
    from validators.sandbox import check_result_folder

    if run.error and run.returncode == 127:
        return result("error", run.error, **base)
    if run.timed_out:
        return result("fail", f"{tool} timed out after {timeout_s:.0f}s", **base)
    problem = check_result_folder(folder, result_file, started_ns, run.child_exit_ns)
    if problem:
        return result("error", f"{tool} result rejected: {problem}", **base)
    try:
        report = parse_junit(folder / result_file)
    except JUnitError as e:
        return result("error", f"{tool} result rejected: {e}", **base)
    metrics = {**base, **report.metrics()}
    if report.tests == 0:
        return result("fail", f"no tests ran ({zero_tests})", **metrics)
    if not report.ok:
        return result("fail", summarize(report), **metrics)
    if report.passed < min_passed:
        return result("fail", f"only {report.passed} tests passed (min_passed {min_passed}); " + summarize(report),
                      **metrics)
    if run.returncode != 0:
        return result("error", f"{tool} exited {run.returncode} although its XML reports no failure", **metrics)
    return result("pass", summarize(report), **metrics)
