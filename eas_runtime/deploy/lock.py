"""``constraints.txt``: the exact version of every package the project installs.

Two builds of one commit must install the same packages, so the images (``pip wheel -c``
in functions/Containerfile.base, ``pip install -c /app/constraints.txt`` for a function's own
requirements) and the test command (README, ``.ci/run``) install under these constraints.

The file is made from an environment where the project works (its tests pass): the closure of
``plato-eas[postgres,test,dev]`` and of every ``functions/*/requirements.txt``, each package at
the version installed there, markers evaluated for that environment (Linux, CPython 3.11, as
the images). ``python -m eas_runtime.deploy.lock`` (``just lock``) writes it; ``--check``
exits 1 when the file differs from what it would write (a package added, removed or moved).
"""
from __future__ import annotations

import argparse
import importlib.metadata as metadata
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement

from eas_runtime.settings import PROJECT_ROOT

LOCK_FILE = "constraints.txt"
PROJECT = "plato-eas"
EXTRAS = ("postgres", "test", "dev")
HEADER = ("# Exact versions of every package the project installs (eas_runtime/deploy/lock.py).\n"
          "# Written by `just lock` from an environment whose tests pass; the images and the test\n"
          "# command install under these constraints (pip -c constraints.txt).\n")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class LockError(RuntimeError):
    """A required package is not installed here; the message names it and who needs it."""


def _requirements(root: Path) -> list[tuple[Requirement, str]]:
    found = [(Requirement(f"{PROJECT}[{','.join(EXTRAS)}]"), "the project")]
    for path in sorted(root.glob("functions/*/requirements.txt")):
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                found.append((Requirement(line), str(path.relative_to(root))))
    return found


def closure(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Canonical name -> installed version of every package the project's requirements need."""
    versions: dict[str, str] = {}
    done: set[tuple[str, tuple[str, ...]]] = set()
    todo = _requirements(root)
    while todo:
        req, needed_by = todo.pop()
        key = (canonical(req.name), tuple(sorted(req.extras)))
        if key in done:
            continue
        done.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise LockError(f"{req.name} (needed by {needed_by}) is not installed here: install the project "
                            f"with `pip install -e '.[{','.join(EXTRAS)}]'` first") from None
        name = canonical(dist.metadata["Name"])
        if name != canonical(PROJECT):
            versions[name] = dist.version
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is not None:
                wanted = [""] + sorted(req.extras)
                if not any(sub.marker.evaluate({"extra": extra}) for extra in wanted):
                    continue
            todo.append((sub, name))
    return versions


def render(root: Path = PROJECT_ROOT) -> str:
    return HEADER + "".join(f"{name}=={version}\n" for name, version in sorted(closure(root).items()))


def read(path: Path) -> dict[str, str]:
    """The pins of a constraints file: canonical name -> version (every line ``name==version``)."""
    pins = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", line)
        if match is None:
            raise LockError(f"{path}:{n}: {line!r} is not name==version")
        pins[canonical(match.group(1))] = match.group(2)
    return pins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eas_runtime.deploy.lock", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when constraints.txt is not what it would be")
    args = parser.parse_args(argv)
    target = PROJECT_ROOT / LOCK_FILE
    try:
        text = render()
    except LockError as exc:
        print(f"lock: {exc}", file=sys.stderr)
        return 2
    if args.check:
        old = read(target) if target.is_file() else {}
        new = read_text(text)
        changed = sorted(set(old) ^ set(new) | {n for n in set(old) & set(new) if old[n] != new[n]})
        if changed:
            print("lock: constraints.txt differs from this environment: " + ", ".join(
                f"{n} {old.get(n, '-')} -> {new.get(n, '-')}" for n in changed), file=sys.stderr)
            return 1
        print(f"lock: constraints.txt pins the {len(new)} packages installed here")
        return 0
    target.write_text(text)
    print(f"wrote {target} ({text.count(chr(10)) - HEADER.count(chr(10))} packages)")
    return 0


def read_text(text: str) -> dict[str, str]:
    return {canonical(line.split("==")[0]): line.split("==")[1]
            for line in text.splitlines() if line and not line.startswith("#")}


if __name__ == "__main__":
    sys.exit(main())
