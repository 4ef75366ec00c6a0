"""Every shell block of README.md and of examples/*/README.md runs as written from a fresh copy
of the repository (issue 14: a recipe failed as written, with a path outside the clone, a job
id guessed, and a package the install left out).

How: the files git tracks (and new ones it does not ignore) are copied to an empty folder, as a
clone would have them; a virtual environment that sees this machine's packages
(``--system-site-packages``, so nothing is downloaded twice) gets the copy installed by the
README's own first command. Then the blocks of each README run in order with ``bash -e``, in
the copy's root, the README's own way: the first README's blocks start a pipeline with
``eas up --detach`` and later blocks use it; between README files the pipeline is stopped and
its folder removed, so each file starts as a newcomer would. Besides the exit status, each
block's output is checked for what it is there to show (:data:`EXPECTED`).

One block is not run here: the test command itself (it runs this test); it must be the exact
command of ``.ci/run``, which CI runs as written.

The blocks use the README's default ports (8470-8472): a pipeline already listening there fails
the test with that reason, not a confusing error later.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from eas_runtime.settings import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

READMES = ["README.md", *sorted(str(p.relative_to(PROJECT_ROOT)) for p in PROJECT_ROOT.glob("examples/*/README.md"))]
BLOCK = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```", re.S | re.M)
TEST_COMMAND = "python3 -m pip install -q -e '.[test]' -c constraints.txt && python3 -m eas_runtime.devservers install && python3 -m pytest"
DEFAULT_PORTS = (8470, 8471, 8472)
#: What a block's output must show, by a line of the block (its first command that needs it).
EXPECTED = {
    "python3 -m pip install -e . && eas demo": ["12/12 periods recovered within 3 %"],
    "eas upload --wait functions/transit_search_bls_reference": ["transit_search_bls_reference (1 tasks)", "PASS"],
    "eas submit --wait examples/jobs/control_flow_demo.json": [" as job ", "finished"],
    "eas submit --dry-run --json examples/jobs/detection_grid_2d.json": ['"task_counts"'],
    "eas upload --wait --prefix tess/": ["planet_search (1 tasks)", "vetting (1 tasks)"],
    "eas submit --wait examples/real_data/detrend_and_search.json": ["transit_search_tls (10 tasks)", "finished"],
    "eas submit --wait examples/real_data/planets.json": ["vetting (10 tasks)", "finished"],
    'eas candidates --star "KIC 9002278"': ["KIC 9002278"],
    "python3 -m benchmarks.experiments control_flow_demo ingest_lcsg": ["control_flow_demo", "ingest_lcsg"],
}
#: Files a block must leave in the copy's root.
MADE = {"eas candidates --report 1 --out reports/": ["planets.csv", "candidates.xml", "reports"]}


def blocks(readme: str) -> list[str]:
    return BLOCK.findall((PROJECT_ROOT / readme).read_text())


def test_every_readme_has_blocks_and_the_test_command_is_ci_s():
    found = {name: blocks(name) for name in READMES}
    assert all(found.values()), found
    assert TEST_COMMAND in found["README.md"][1]
    assert TEST_COMMAND in (PROJECT_ROOT / ".ci" / "run").read_text()


def _copy_of_the_repository(target: Path) -> Path:
    git = shutil.which("git")
    if git is None or not (PROJECT_ROOT / ".git").exists():
        pytest.fail("the README test copies the repository as git sees it: git and a checkout are needed")
    listed = subprocess.run([git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=PROJECT_ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = PROJECT_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _ports_free() -> None:
    for port in DEFAULT_PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"port {port} is in use: the README's blocks use the default ports 8470-8472; "
                            "stop what listens there (`eas down`) and run again")


def test_every_shell_block_runs_as_written(tmp_path):
    _ports_free()
    clone = _copy_of_the_repository(tmp_path / "plato-eas")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAS_") and k not in ("PYTHONPATH", "K_SINK")}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               XDG_STATE_HOME=str(tmp_path / "state"), MPLBACKEND="Agg")
    ran = []
    try:
        for readme in READMES:
            for n, block in enumerate(blocks(readme)):
                if TEST_COMMAND in block:
                    continue
                done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block], cwd=clone, env=env,
                                      capture_output=True, text=True, timeout=1800)
                where = f"{readme}, shell block {n + 1}:\n{block}\n--- stdout:\n{done.stdout[-6000:]}\n" \
                        f"--- stderr:\n{done.stderr[-6000:]}"
                assert done.returncode == 0, where
                assert "Traceback" not in done.stdout + done.stderr, where
                for line, wanted in EXPECTED.items():
                    if line in block:
                        missing = [w for w in wanted if w not in done.stdout]
                        assert not missing, f"{missing} not in the output of {where}"
                for line, files in MADE.items():
                    if line in block:
                        assert all((clone / f).exists() for f in files), where
                ran.append((readme, n))
            # The next README starts as a newcomer would: no pipeline, no folder of one.
            subprocess.run(["bash", "-c", "eas down"], cwd=clone, env=env, capture_output=True, timeout=120)
            shutil.rmtree(clone / ".eas", ignore_errors=True)
    finally:
        subprocess.run(["bash", "-c", "eas down"], cwd=clone, env=env, capture_output=True, timeout=120)
    assert len(ran) == sum(len(blocks(r)) for r in READMES) - 1
    assert (clone / "reports").is_dir() and any((clone / "reports").glob("*.pdf"))
