"""A check's result as JUnit XML, the format every CI shows: a test case per cell and per metric."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from .comparison import Comparison, cell_label, cell_problems, metric_problem

CHANGED_METRIC = ("changed", "added", "removed")


def junit_xml(comparison: Comparison) -> str:
    """One ``<testsuite>``: the run status, each code cell's outputs and each metric, failed where
    the comparison found an unexpected change."""
    suite_name = f"jupyter mlx check {comparison.b.ref} against {comparison.a.ref}"
    cases: list[tuple[str, list[str]]] = []
    status_a, status_b = (side.run.status if side.run is not None else None for side in (comparison.a, comparison.b))
    if status_a and status_b:
        cases.append(("run status", [] if status_a == status_b else [f"run status: {status_a} -> {status_b}"]))
    for cell in comparison.cells:
        if cell.cell_type == "code" and not cell.ignored:
            cases.append((f"{cell_label(cell)} outputs", cell_problems(cell)))
    for metric in comparison.metrics:
        cases.append((f"metric {metric['name']}",
                      [metric_problem(metric)] if metric["judgement"] in CHANGED_METRIC else []))
    failures = sum(1 for _, problems in cases if problems)
    suite = ET.Element("testsuite", name=suite_name, tests=str(len(cases)), failures=str(failures), errors="0")
    classname = (comparison.b.run.notebook if comparison.b.run is not None else comparison.b.ref).replace("/", ".")
    for name, problems in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=name)
        if problems:
            failure = ET.SubElement(case, "failure", message=problems[0])
            failure.text = "\n".join(problems)
    suites = ET.Element("testsuites", name="jupyter_mlx", tests=str(len(cases)), failures=str(failures))
    suites.append(suite)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
