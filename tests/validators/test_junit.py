"""JUnit parsing: counts come from the test cases, bad files are errors, summaries stay short."""
from __future__ import annotations

import pytest

from validators.junit import JUnitError, parse_junit, summarize

PYTEST_XML = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="0" skipped="0" tests="99" time="0.5">
<testcase classname="tests.py.test_ops" name="test_add" time="0.01"/>
<testcase classname="tests.py.test_ops" name="test_mul" time="0.01"><failure message="assert 1 == 2">def test_mul():
&gt;       assert 1 == 2
E       assert 1 == 2

tests/py/test_ops.py:7: AssertionError</failure></testcase>
<testcase classname="tests.py.test_ops" name="test_cuda" time="0"><skipped message="no GPU"/></testcase>
<testcase classname="tests.py.test_io" name="test_load" time="0"><error message="fixture failed">boom</error></testcase>
</testsuite></testsuites>"""

CTEST_XML = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="Linux" tests="3" failures="1" disabled="1" skipped="0" hostname="h" time="0">
<testcase name="core_test" classname="core_test" time="0.01" status="run"><system-out>ok</system-out></testcase>
<testcase name="alloc_test" classname="alloc_test" time="0.02" status="fail"><failure message="Failed"/>
<system-out>alloc_test.cpp:12: Failure
Expected equality of these values</system-out></testcase>
<testcase name="gpu_test" classname="gpu_test" time="0" status="disabled"><skipped message="Disabled"/></testcase>
</testsuite>"""


def test_pytest_xml_counts_cases_not_attributes(tmp_path):
    path = tmp_path / "p.xml"
    path.write_text(PYTEST_XML)
    report = parse_junit(path)
    assert (report.tests, report.passed, report.failures, report.errors, report.skipped) == (4, 1, 1, 1, 1)
    assert not report.ok
    names = [c.name for c in report.failed]
    assert names == ["tests.py.test_ops::test_mul", "tests.py.test_io::test_load"]
    text = summarize(report)
    assert "E       assert 1 == 2" in text or "E assert 1 == 2" in text
    assert "test_load" in text


def test_ctest_xml_uses_system_out_for_failures(tmp_path):
    path = tmp_path / "c.xml"
    path.write_text(CTEST_XML)
    report = parse_junit(path)
    assert (report.tests, report.passed, report.failures, report.skipped) == (3, 1, 1, 1)
    assert report.failed[0].name == "alloc_test"
    assert "alloc_test.cpp:12: Failure" in summarize(report)


@pytest.mark.parametrize("content", ["", "<testsuites><testsuite>", "<html></html>", "<testsuites/>"])
def test_malformed_xml_is_an_error(tmp_path, content):
    path = tmp_path / "bad.xml"
    path.write_text(content)
    with pytest.raises(JUnitError):
        parse_junit(path)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(JUnitError, match="not written"):
        parse_junit(tmp_path / "none.xml")


def test_summary_is_bounded(tmp_path):
    cases = "".join(f'<testcase classname="c" name="test_{i}"><failure message="m{i}">{"x" * 300}</failure></testcase>'
                    for i in range(100))
    path = tmp_path / "many.xml"
    path.write_text(f"<testsuite>{cases}</testsuite>")
    text = summarize(parse_junit(path), limit=2000)
    assert len(text) <= 2100 and "more failed tests" in text
