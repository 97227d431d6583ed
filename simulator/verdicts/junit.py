"""Verdicts as JUnit XML (``sim start --junit PATH``), so that CI systems show them: one
``testsuite`` named after the run, one ``testcase`` per expectation, a ``failure`` for each one
that failed, and the measured line as the case's ``system-out``. Written with the standard
library's ``xml.etree``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from simulator.report import Verdict, verdict_title


def junit_xml(verdicts: Sequence[Verdict], *, suite: str) -> str:
    """The JUnit XML document of ``verdicts`` in a test suite named ``suite``."""
    failures = sum(1 for v in verdicts if not v.passed)
    root = ET.Element("testsuites", name="sim", tests=str(len(verdicts)),
                      failures=str(failures))
    group = ET.SubElement(root, "testsuite", name=suite, tests=str(len(verdicts)),
                          failures=str(failures), errors="0", skipped="0")
    for verdict in verdicts:
        case = ET.SubElement(group, "testcase", classname=suite, name=verdict_title(verdict))
        if not verdict.passed:
            failure = ET.SubElement(case, "failure", message=verdict.measured,
                                    type="ExpectationFailed")
            failure.text = verdict.measured
        ET.SubElement(case, "system-out").text = verdict.measured
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: str | Path, verdicts: Sequence[Verdict], *, suite: str) -> None:
    """Write :func:`junit_xml` to ``path`` (UTF-8; its folder is created). Raises ``OSError``
    when it cannot be written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(junit_xml(verdicts, suite=suite), encoding="utf-8")
