"""The command line has no import circle (issue 15: cli.py and diagnostics/cli.py imported each
other): no module of the project imports eas_runtime.cli, which builds the parser from the
command modules; they share eas_runtime._cli_base instead."""
from __future__ import annotations

import ast

from eas_runtime.settings import PROJECT_ROOT


def _imports(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_no_module_imports_the_command_line_entry_point():
    offenders = [str(p.relative_to(PROJECT_ROOT)) for p in sorted((PROJECT_ROOT / "eas_runtime").rglob("*.py"))
                 if p.name != "cli.py" or p.parent.name != "eas_runtime"
                 if "eas_runtime.cli" in _imports(p)]
    assert offenders == []


def test_the_shared_command_module_imports_no_command_module():
    shared = _imports(PROJECT_ROOT / "eas_runtime" / "_cli_base.py")
    assert not {m for m in shared if m.endswith(".cli") or ".cli." in m}
