"""A reference model of how the prototype turned a job file into task rows (test use only).

It follows the prototype's own code paths (``submit.py``, ``task_execution_chain.py``,
``task_execution_for_loop.py``, ``task_execution_conditional.py``,
``task_execution_do_while_loop.py``, ``task_expression_evaluation.py``): the job file becomes
one root ``execution_chain`` row; a chain registers one row per entry; a for-loop registers one
``execution_chain`` per value (numpy ``linspace``/``logspace``); a conditional registers one
chain with the chosen list; a do-while loop registers a chain holding the body plus a copy of
itself that decides on the next iteration. Expressions go through Python's ``eval`` as in the
prototype: this model only ever reads the trusted job files of this repository.
"""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


import numpy as np

CONSTANTS = type("EASConstants", (), {"day": 1, "month": 28, "year": 365.25, "sun_radius": 695500e3,
                                      "earth_radius": 6371e3, "jupiter_radius": 71492e3,
                                      "phy_AU": 149597870700, "Rearth": 0.08911486,
                                      "plato_noise": 0.000315})()
_CODE: dict[str, object] = {}


def evaluate(expression, metadata: dict, requested: dict | None = None):
    if not isinstance(expression, str):
        return expression
    expression = expression.strip()
    if not expression or expression[0] not in "'\"(":
        return expression
    code = _CODE.get(expression) or _CODE.setdefault(expression, compile(expression, "<job>", "eval"))
    return eval(code, {"constants": CONSTANTS, "metadata": metadata,
                       "requested_metadata": requested or {}, "random": random})


@dataclass
class Row:
    task_type: str
    metadata: dict
    description: dict
    children: list = field(default_factory=list)


@dataclass
class Model:
    """Rows the prototype creates; ``decide(row, requested)`` answers conditionals and
    do-while checks (the results the model cannot compute)."""

    decide: Callable[[Row], bool] = lambda row: False
    counts: Counter = field(default_factory=Counter)
    outputs: list = field(default_factory=list)
    leaves: list = field(default_factory=list)

    def run_job(self, spec: dict) -> Counter:
        metadata: dict = {}
        self.wd = evaluate(spec.get("working_directory", ""), metadata)
        self.chain(spec.get("task_list", []), metadata)
        return self.counts

    def chain(self, task_list: list, metadata: dict) -> None:
        self.counts["execution_chain"] += 1
        rows = []
        for entry in task_list:
            task_type = evaluate(entry["task"], metadata)
            self.counts[task_type] += 1
            row = Row(task_type, metadata, entry)
            if task_type not in ("execution_chain", "execution_for_loop", "execution_conditional",
                                 "execution_do_while_loop"):
                for filename in (entry.get("outputs") or {}).values():
                    self.outputs.append(evaluate(filename, metadata))
                self.leaves.append(row)
            rows.append(row)
        for row in rows:                      # each registered task runs later
            self.run(row)

    def run(self, row: Row) -> None:
        d, md = row.description, row.metadata
        if row.task_type == "execution_chain":
            self.chain(d.get("task_list", []), md)
        elif row.task_type == "execution_for_loop":
            name = d.get("parameter", d.get("name"))
            if "values" in d:
                values = [evaluate(v, md) for v in d["values"]]
            elif "linear_range" in d:
                start, end, n = (evaluate(v, md) for v in d["linear_range"])
                values = np.linspace(start, end, n)
            else:
                start, end, n = (evaluate(v, md) for v in d["log_range"])
                values = np.logspace(np.log10(start), np.log10(end), n)   # numpy throughout
            for index, value in enumerate(values):
                value = value.item() if hasattr(value, "item") else value
                self.chain(d.get("task_list", []), {**md, name: value, f"{name}_index": index})
        elif row.task_type == "execution_conditional":
            branch = "task_list" if self.decide(row) else "else_task_list"
            if branch in d:
                self.chain(d[branch], md)
        elif row.task_type == "execution_do_while_loop":
            counter_name = f"{d['iteration_name']}_index"
            counter = md.get(counter_name, 0)
            if counter > 0 and not self.decide(row):
                return
            body = list(d["task_list"]) + [{
                "task": "execution_do_while_loop", "iteration_name": d["iteration_name"],
                "requires_metadata_from": d["requires_metadata_from_child"],
                "requires_metadata_from_child": d["requires_metadata_from_child"],
                "repeat_criterion": d["repeat_criterion"], "task_list": list(d["task_list"])}]
            self.chain(body, {**md, counter_name: counter + 1})
