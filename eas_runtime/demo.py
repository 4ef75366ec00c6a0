"""``eas demo``: a dozen synthetic transiting planets through ingest -> verify -> BLS.

The demo only uploads files; the watch rule on ``inbox/`` turns each upload into a job, so
what runs is exactly what runs for a scientist's own uploads. Light curves are made with
batman (the synthesis_batman science code), half written as LCSG CSV and half as FITS, with the
true period in their metadata so the search's QC can judge the period it finds.
"""
from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from eas_runtime.db import metadata as md
from eas_runtime.db.models import A_FINISHED, CANCELLED, DONE, FAILED, Attempt, Job, Task, WatchRule
from eas_runtime.embedded import EmbeddedRuntime
from eas_runtime.settings import Settings

CHAIN = ["ingest_external_lcs", "verify", "transit_search_bls_reference"]
PERIODS_D = [1.31, 1.87, 2.42, 3.05, 3.66, 4.38, 5.17, 5.96, 6.85, 7.72, 8.61, 9.47]
DURATION_D = 27.0
CADENCE_S = 600.0


def make_lightcurves(folder: Path, count: int, seed: int = 20261124) -> list[tuple[Path, float]]:
    """Write ``count`` synthetic light curves; return (file, true period in days)."""
    from eas_runtime.batman_synthesis import synthesize
    from eas_runtime.lightcurve import write_lightcurve

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        period = PERIODS_D[i % len(PERIODS_D)] * (1 + 0.013 * (i // len(PERIODS_D)))
        specs = {"duration": DURATION_D, "sampling_cadence": CADENCE_S, "orbital_period": period,
                 "semi_major_axis": (period / 365.25) ** (2 / 3), "planet_radius": 0.6 + 0.04 * (i % 5),
                 "t0": 0.37 + 0.11 * i, "noise": 2.5e-3}
        lc = synthesize(specs, seed=seed + i)
        if i % 2 == 0:
            path = folder / f"demo_{i:02d}.csv"
            _write_lcsg(lc, path)
        else:
            path = folder / f"demo_{i:02d}.fits"
            write_lightcurve(lc, path)
        made.append((path, period))
    return made


def _write_lcsg(lc, path: Path) -> None:
    lines = [f"# #{k} = {v}" for k, v in lc.meta.items() if isinstance(v, (int, float, str)) and k != "warnings"]
    lines.append("# time [days], flux, flag")
    lines += [f"{t:.8f},{f:.8f},{int(g)}" for t, f, g in zip(lc.time, lc.flux, lc.flags)]
    path.write_text("\n".join(lines) + "\n")


def _port_or_any(port: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            return 0


def run_demo(settings: Settings, *, count: int = 12, keep: bool = False, timeout_s: float = 900.0,
             out=sys.stdout) -> int:
    home = settings.home_path / "demo"
    shutil.rmtree(home, ignore_errors=True)
    settings = settings.replace(home=str(home), database_url="", store="local", store_root="",
                                gateway_port=_port_or_any(settings.gateway_port),
                                index_port=_port_or_any(settings.index_port), adapter_port=0)
    runtime = EmbeddedRuntime(settings).start()
    try:
        with runtime.db.session() as s:
            s.add(WatchRule(prefix="inbox/", task_types=CHAIN))
        print(f"EAS demo in {home}\nbroker {runtime.broker_url}\nindex site {runtime.index_url}", file=out)
        from eas_runtime.resources import Resources
        res = Resources(runtime.settings, db=runtime.db)
        with tempfile.TemporaryDirectory() as tmp:
            files = make_lightcurves(Path(tmp), count)
            truth = {}
            for path, period in files:
                res.store.put_file(f"inbox/{path.name}", path)
                truth[f"inbox/{path.name}"] = period
        print(f"uploaded {len(files)} light curves to inbox/; the watch rule does the rest", file=out)
        finished = _wait(runtime, len(files) * len(CHAIN), timeout_s, out)
        rows = _results(runtime, truth)
        _print_table(rows, out)
        print(f"\nindex site: {runtime.index_url}", file=out)
        all_done = finished and all(r["state"] == DONE for r in rows) and len(rows) == len(files)
        if keep:
            print("pipeline still running; Ctrl-C stops it", file=out)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        else:
            print(f"(browse it later with: eas --home {home} up)", file=out)
        return 0 if all_done else 1
    finally:
        runtime.stop()


def _wait(runtime: EmbeddedRuntime, expected: int, timeout_s: float, out) -> bool:
    """Show progress until every task ended or nothing is in flight any more."""
    from eas_runtime.status import quiescent
    deadline = time.monotonic() + timeout_s
    last = ""
    calm = 0
    while time.monotonic() < deadline:
        with runtime.db.read() as s:
            states = s.execute(select(Task.task_type, Task.state)).all()
        done = {t: 0 for t in CHAIN}
        ended = 0
        for task_type, state in states:
            if state in (DONE, FAILED, CANCELLED):
                ended += 1
                done[task_type] = done.get(task_type, 0) + 1
        line = "  ".join(f"{t} {done.get(t, 0)}/{expected // len(CHAIN)}" for t in CHAIN)
        if line != last:
            print(f"[{time.strftime('%H:%M:%S')}] {line}", file=out, flush=True)
            last = line
        if len(states) >= expected and ended == len(states):
            return True
        # Tasks below a failed one wait for an input that will not come: stop once all is calm.
        calm = calm + 1 if len(states) >= expected and quiescent(runtime.db) else 0
        if calm >= 3:
            return False
        time.sleep(0.5)
    print(f"demo timed out after {timeout_s:.0f} s", file=out)
    return False


def _results(runtime: EmbeddedRuntime, truth: dict[str, float]) -> list[dict]:
    rows = []
    with runtime.db.read() as s:
        for job in s.scalars(select(Job).order_by(Job.id)):
            key = (job.spec or {}).get("object")
            task = s.scalar(select(Task).where(Task.job_id == job.id, Task.task_type == CHAIN[-1]))
            if key not in truth or task is None:
                continue
            attempt = s.scalar(select(Attempt).where(Attempt.task_id == task.id, Attempt.state == A_FINISHED)
                               .order_by(Attempt.number.desc()).limit(1))
            meta = md.get_metadata(s, "attempt", attempt.id) if attempt else {}
            failed = s.scalar(select(Task).where(Task.job_id == job.id, Task.state != DONE))
            rows.append({"key": key, "true": truth[key], "found": meta.get("period"),
                         "outcome": meta.get("outcome", "UNDEFINED"),
                         "state": DONE if failed is None else failed.state})
    return sorted(rows, key=lambda r: r["key"])


def _print_table(rows: list[dict], out) -> None:
    print(f"\n{'light curve':24s} {'true P [d]':>11s} {'found P [d]':>12s}  result", file=out)
    for r in rows:
        found = f"{r['found']:.4f}" if isinstance(r["found"], (int, float)) else "-"
        verdict = r["outcome"] if r["state"] == DONE else f"task {r['state']}"
        print(f"{r['key']:24s} {r['true']:11.4f} {found:>12s}  {verdict}", file=out)
    passed = sum(1 for r in rows if r["outcome"] == "PASS")
    print(f"{passed}/{len(rows)} periods recovered within 3 %", file=out)
