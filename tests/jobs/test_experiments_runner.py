"""``python -m benchmarks.experiments``: jobs run to the end in a fresh embedded runtime, alone or
together, and each failed attempt is summarised by its cause."""
from __future__ import annotations

import json

from benchmarks import experiments


def test_two_jobs_run_together_in_one_runtime_to_the_end(capsys):
    assert experiments.main(["control_flow_demo", "ingest_lcsg", "--together", "--timeout", "600"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [r["job"] for r in rows] == ["control_flow_demo", "ingest_lcsg"]
    for row in rows:
        assert row["tasks"] == row["done"] > 0 and row["failed"] == 0 and row["failure_causes"] == {}
        assert row["together_with"] == [n for n in ("control_flow_demo", "ingest_lcsg") if n != row["job"]]
    assert rows[1]["by_type"]["ingest_external_lcs"]["attempts"] == 3


def test_a_failure_is_summarised_by_its_cause():
    assert experiments._cause("Traceback (most recent call last):\n  File \"x\", line 1\n"
                              "IndexError: tuple index out of range\n") == "IndexError: tuple index out of range"
    assert experiments._cause("timeout: stopped after 570.0 s\n  here") == "timeout: stopped after 570.0 s"
    assert experiments._cause(None) == ""
