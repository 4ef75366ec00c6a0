"""What a science code sees of the pipeline: its context and its result.

This module imports nothing from the event machinery, so that science modules and their
tests can use it without a server, a database or a store.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


class ParameterError(ValueError):
    """A task parameter is missing or has a value the code cannot use.

    The task fails at once and the event is answered 400 (never retried): the same
    parameters would fail again.
    """


class InputError(ValueError):
    """An input file is malformed (truncated, corrupt, unsorted...): the task fails, the
    failure is recorded as an input problem with its message, and the event is acknowledged."""


@dataclass
class TaskContext:
    """Inputs and parameters of one attempt of one task.

    ``inputs`` maps each semantic input name to a local file holding a copy of the object;
    ``input_metadata`` holds the metadata recorded for that input product (e.g. the true period
    of a synthetic light curve); ``requested_metadata`` maps the names of tasks listed in
    ``requires_metadata_from`` to their result metadata. Outputs are written below ``workdir``.
    """

    task_type: str
    params: Mapping[str, Any]
    inputs: Mapping[str, Path]
    workdir: Path
    input_metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    requested_metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    output_names: Mapping[str, str] = field(default_factory=dict)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("eas.task"))
    #: CPU cores this attempt may use (the function's allotment).
    cpus: int = 1
    #: The pipeline the attempt runs in (``eas_runtime.resources.Resources``: ``db``, ``store``),
    #: for the few tasks that look beyond their inputs (ingest's glob mode, stitch); None when
    #: a science code is called directly.
    pipeline: Any = None

    def input(self, name: str) -> Path:
        try:
            return self.inputs[name]
        except KeyError:
            raise ParameterError(
                f"task {self.task_type!r} needs an input named {name!r}; "
                f"it was given {sorted(self.inputs) or 'none'}") from None

    def param(self, name: str, default: Any = None, kind: type | None = None) -> Any:
        """A parameter, converted to ``kind`` when given; ParameterError names a bad value."""
        value = self.params.get(name, default)
        if kind is None or value is None:
            return value
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise ParameterError(
                f"parameter {name!r} of task {self.task_type!r} must be {kind.__name__}, "
                f"got {value!r}") from None

    def output_path(self, name: str, suffix: str = "") -> Path:
        """Where to write output ``name`` (the file name follows the planned object name)."""
        planned = self.output_names.get(name)
        filename = Path(planned).name if planned else f"{name}{suffix}"
        path = self.workdir / "outputs" / name / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class TaskResult:
    """What a science code returns: output files, result metadata, per-output metadata.

    ``units`` maps result keys to their unit (``{'period': 'd', 'depth': 'ppm'}``).
    """

    outputs: dict[str, Path] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    output_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    output_types: dict[str, str] = field(default_factory=dict)
    #: Vetted transit candidates for the catalogue (rows of :mod:`eas_runtime.planets.table`);
    #: None when the task makes none. They replace the task's rows when the attempt succeeds.
    candidates: list[dict[str, Any]] | None = None
