"""Fixtures for the diagnostics tests: a row builder on the test's database, and the ``eas``
command run in-process against that database."""
from __future__ import annotations

import json

import pytest

from eas_runtime import cli
from tests.diagnostics.builders import Rows


@pytest.fixture
def rows(resources) -> Rows:
    return Rows(resources.db)


@pytest.fixture
def db(resources):
    return resources.db


class EasCommand:
    """Runs ``eas ARGS`` in this process (on the test's home, hence its database)."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = cli.main([str(a) for a in args])
        out = self.capsys.readouterr()
        return rc, out.out, out.err

    def json(self, *args: str):
        rc, out, err = self(*args, "--json")
        assert rc == 0, err
        return json.loads(out)


@pytest.fixture
def eas(capsys, resources) -> EasCommand:
    return EasCommand(capsys)
