"""Plans as data: steps of commands, printed as a shell script (the dry run) or executed.

A :class:`Step` runs its ``commands`` in order. With a ``probe``, the probe runs first: when it
succeeds (the resource exists) the step runs ``if_exists`` instead, which may be empty (skip).
:func:`script` prints a plan as the shell script that does the same, manifests as here-documents;
:func:`run` executes it with :mod:`subprocess`, passing the manifests on stdin.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, Sequence, TextIO


class PlanError(RuntimeError):
    """A command of the plan failed or a tool it needs is missing."""


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    #: Text passed on stdin (a manifest), or None.
    stdin: str | None = None

    def shell(self) -> str:
        line = shlex.join(self.argv)
        if self.stdin is None:
            return line
        body = self.stdin if self.stdin.endswith("\n") else self.stdin + "\n"
        return f"{line} <<'EOF'\n{body}EOF"


def cmd(*argv: str, stdin: str | None = None) -> Command:
    return Command(tuple(argv), stdin)


@dataclass(frozen=True)
class Step:
    title: str
    commands: tuple[Command, ...]
    probe: Command | None = None
    if_exists: tuple[Command, ...] = ()

    @property
    def tools(self) -> set[str]:
        every = [*self.commands, *self.if_exists, *([self.probe] if self.probe else [])]
        return {c.argv[0] for c in every}


def _indent(text: str) -> str:
    """Indent a command inside if/else, leaving here-document bodies as they are."""
    first, sep, rest = text.partition("\n")
    return "  " + first + (sep + rest if sep else "")


def step_script(step: Step) -> str:
    lines = [f"# {line}" for line in step.title.splitlines()]
    if step.probe is None:
        lines += [c.shell() for c in step.commands]
    else:
        probe = f"{step.probe.shell()} >/dev/null 2>&1"
        if not step.if_exists and len(step.commands) == 1:
            lines.append(f"{probe} || {step.commands[0].shell()}")
        elif not step.if_exists:
            lines += [f"if ! {probe}; then", *(_indent(c.shell()) for c in step.commands), "fi"]
        else:
            lines += [f"if {probe}; then", *(_indent(c.shell()) for c in step.if_exists),
                      "else", *(_indent(c.shell()) for c in step.commands), "fi"]
    return "\n".join(lines) + "\n"


def script(steps: Sequence[Step], header: str = "") -> str:
    """The plan as a shell script (``set -eu``), numbered steps, manifests inline."""
    out = ["#!/bin/sh", "set -eu"]
    out += [f"# {line}" if line else "#" for line in header.splitlines()]
    text = "\n".join(out) + "\n"
    for i, step in enumerate(steps, 1):
        numbered = Step(f"[{i}/{len(steps)}] {step.title}", step.commands, step.probe,
                        step.if_exists)
        text += "\n" + step_script(numbered)
    return text


#: ``runner(command, show_output)``: show_output is False for probes (their output is captured).
Runner = Callable[[Command, bool], "subprocess.CompletedProcess[str]"]


def subprocess_runner(cwd: str | None = None) -> Runner:
    """Runs each command in ``cwd``; its output goes to this process's stdout/stderr, except a
    probe's, which is captured."""
    def run_one(command: Command, show_output: bool) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command.argv, input=command.stdin, text=True, check=False,
                              capture_output=not show_output, cwd=cwd)
    return run_one


def missing_tools(steps: Sequence[Step]) -> list[str]:
    needed = sorted(set().union(*(s.tools for s in steps))) if steps else []
    return [tool for tool in needed if shutil.which(tool) is None]


def run(steps: Sequence[Step], runner: Runner | None = None, out: TextIO | None = None) -> None:
    """Execute the plan; raise :class:`PlanError` at the first failing command."""
    runner = runner or subprocess_runner()
    out = out or sys.stdout
    for i, step in enumerate(steps, 1):
        print(f"[{i}/{len(steps)}] {step.title.splitlines()[0]}", file=out, flush=True)
        commands = step.commands
        if step.probe is not None and runner(step.probe, False).returncode == 0:
            commands = step.if_exists
            if not commands:
                print("    exists already: left as it is", file=out, flush=True)
        for command in commands:
            result = runner(command, True)
            if result.returncode != 0:
                raise PlanError(f"step {i} ({step.title.splitlines()[0]}) failed: "
                                f"`{shlex.join(command.argv)}` exited with {result.returncode}")
