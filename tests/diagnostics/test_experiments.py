"""Experiment reports: Wilson intervals, the power-law fit, the false-alarm rule and the SQL
aggregation over a job's searches keyed by loop parameters."""
from __future__ import annotations

import itertools
import math

import pytest

from eas_runtime.diagnostics import DiagnosticsError, NotFound
from eas_runtime.diagnostics import experiments as ex

SIZES = (0.25, 1.0, 4.0)
PERIODS = (3.0, 30.0)


# ---------------------------------------------------------------------- statistics
def test_wilson_matches_published_values():
    # Newcombe (1998), Stat. Med. 17, 857, table I: 81/263 -> 0.2553-0.3662 (95 %)
    low, high = ex.wilson(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    # 0/10 and 10/10: not empty, inside [0, 1]; Newcombe's table: 0/10 -> 0-0.2775
    low, high = ex.wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = ex.wilson(10, 10)
    assert high == 1.0 and low == pytest.approx(1 - 0.2775, abs=1e-4)
    assert ex.wilson(0, 0) is None
    with pytest.raises(ValueError):
        ex.wilson(3, 2)


def test_wilson_narrows_with_more_trials():
    widths = [ex.wilson(n // 2, n)[1] - ex.wilson(n // 2, n)[0] for n in (4, 16, 64, 256)]
    assert widths == sorted(widths, reverse=True)
    # about 1/sqrt(n): quadrupling n halves the width, within 10 %
    assert widths[2] / widths[3] == pytest.approx(2.0, rel=0.1)


@pytest.mark.parametrize("exponent", [0.5, 1.0, 1.7, 2.0])
def test_fit_recovers_a_known_exponent(exponent):
    lengths = [7, 14, 28, 56, 112, 365.25, 730.5]
    pairs = [(L, 0.03 * L ** exponent) for L in lengths]
    fit = ex.fit_power_law(pairs)
    assert fit.exponent == pytest.approx(exponent, rel=1e-9)
    assert fit.prefactor == pytest.approx(0.03, rel=1e-9) and fit.points == len(lengths)


def test_fit_with_scatter_and_unusable_points():
    lengths = [7, 14, 28, 56, 112, 224, 448]
    wiggle = [1.05, 0.95, 1.04, 0.96, 1.03, 0.97, 1.0]        # +-5 %, no seed needed
    pairs = [(L, 2.0 * L ** 1.3 * w) for L, w in zip(lengths, wiggle)]
    pairs += [(0, 5.0), (10, 0.0), (None, 3.0), (20, math.nan), (-3, 4.0)]
    fit = ex.fit_power_law(pairs)
    assert fit.points == len(lengths) and fit.exponent == pytest.approx(1.3, abs=0.03)
    assert ex.fit_power_law([(7, 1.0), (7, 2.0)]) is None     # one length: no slope
    assert ex.fit_power_law([]) is None


def test_false_alarm_rule():
    assert ex.is_false_alarm("FAIL", True, False)          # significant, wrong period
    assert ex.is_false_alarm("UNDEFINED", True, False)     # significant, no injected period
    assert ex.is_false_alarm("PASS", True, True)           # transit-free: any detection
    assert ex.is_false_alarm("FAIL", True, True)
    assert not ex.is_false_alarm("PASS", True, False)      # a detection
    assert not ex.is_false_alarm("FAIL", False, False)     # below the threshold: a miss
    assert not ex.is_false_alarm("FAIL", False, True)
    assert not ex.is_false_alarm("PASS", None, False)      # no `detected` recorded


# ---------------------------------------------------------------------- the SQL aggregation
def _search(rows, job, tda, state, meta, results=None, cpu=None, wall=None):
    task = rows.task(job, f"transit_search_{tda}", state=state, params={"metadata": meta})
    if state != "waiting":
        rows.attempt(task, error_kind="science" if state == "failed" else "",
                     wall_s=wall, cpu_s=cpu, cpu_children_s=None if cpu is None else cpu + 1.0,
                     metadata=results or {})
    return task


@pytest.fixture
def grid(rows):
    return build_grid(rows)


def build_grid(rows):
    """tda {tls, bls_reference} x size x period searches: detections for size >= 1 with BLS,
    size 4 only with TLS; TLS of size 0.25, period 30 failed, BLS of size 0.25, period 3 has not
    run; one significant BLS detection at a wrong period; a verify task beside each."""
    job = rows.job("grid")
    expected = {"tls": dict(det=0, fa=0, ended=0), "bls_reference": dict(det=0, fa=0, ended=0)}
    for (t, tda), (i, size), (k, period) in itertools.product(
            enumerate(("tls", "bls_reference")), enumerate(SIZES), enumerate(PERIODS)):
        meta = {"tda": tda, "tda_index": t, "size": size, "size_index": i, "period": period,
                "period_index": k, "label": f"s{i}", "input_key": "same/for/all"}
        rows.task(job, "verify", state="done", params={"metadata": meta})
        if tda == "tls" and size == 0.25 and period == 30.0:
            _search(rows, job, tda, "failed", meta)
            continue
        if tda == "bls_reference" and size == 0.25 and period == 3.0:
            _search(rows, job, tda, "waiting", meta)
            continue
        passed = size >= (4.0 if tda == "tls" else 1.0)
        wrong = tda == "bls_reference" and size == 0.25      # a significant noise peak
        outcome = "PASS" if passed else "FAIL"
        results = {"outcome": outcome, "detected": passed or wrong, "period": period,
                   "target_period": period, "pixels_in_transit": 40}
        _search(rows, job, tda, "done", meta, results, cpu=10.0 * (t + 1) * (i + 1), wall=5.0)
        expected[tda]["ended"] += 1
        expected[tda]["det"] += passed
        expected[tda]["fa"] += wrong
    return job, expected


def test_parameters_are_the_loop_variables_of_the_searches(db, grid):
    job, _ = grid
    described = ex.describe(db, job)
    assert described["task_types"] == ["transit_search_bls_reference", "transit_search_tls"]
    assert described["tdas"] == ["bls_reference", "tls"]
    names = [p["name"] for p in described["parameters"]]
    # tda is the task type; label has no _index; input_key has one value
    assert names == ["period", "size"]
    assert described["parameters"][1]["values"] == list(SIZES)
    assert described["plots"] == {"fraction": True, "completeness": True, "timing": False}
    assert described["length_parameter"] is None


def test_fraction_per_tda_with_missing_searches(db, grid):
    job, expected = grid
    data = ex.fraction(db, job, x="size")
    series = {s["tda"]: s for s in data["series"]}
    tls = {p["size"]: p for p in series["tls"]["points"]}
    bls = {p["size"]: p for p in series["bls_reference"]["points"]}
    assert (tls[0.25]["ended"], tls[0.25]["missing"], tls[0.25]["pass_fraction"]) == (1, 1, 0.0)
    assert tls[4.0]["pass_fraction"] == 1.0 and tls[1.0]["pass_fraction"] == 0.0
    assert (bls[0.25]["ended"], bls[0.25]["missing"], bls[0.25]["false_alarms"]) == (1, 1, 1)
    assert bls[1.0]["pass_fraction"] == 1.0 and bls[1.0]["detections"] == 2
    low, high = ex.wilson(2, 2)
    assert (bls[1.0]["low"], bls[1.0]["high"]) == (low, high)
    assert data["missing"] == 2 and data["numeric"] is True
    split = ex.fraction(db, job, x="size", by="period")
    assert len(split["series"]) == 4 and {s["period"] for s in split["series"]} == set(PERIODS)


def test_completeness_marginalises_the_rest(db, grid):
    job, _ = grid
    data = ex.completeness(db, job, x="size", y="period")
    tls = next(m for m in data["maps"] if m["tda"] == "tls")
    cells = {(c["size"], c["period"]): c for c in tls["cells"]}
    assert cells[(4.0, 3.0)]["pass_fraction"] == 1.0 and cells[(1.0, 30.0)]["pass_fraction"] == 0.0
    assert cells[(0.25, 30.0)]["pass_fraction"] is None and cells[(0.25, 30.0)]["missing"] == 1
    assert ex.completeness(db, job)["x"] in ("size", "period")


def test_tda_table_counts_and_cpu(db, grid):
    job, expected = grid
    items = {r["tda"]: r for r in ex.tda_table(db, job)["items"]}
    for tda, want in expected.items():
        row = items[tda]
        assert (row["ended"], row["detections"], row["false_alarms"]) == (want["ended"], want["det"], want["fa"])
        assert row["tasks"] == 6 and row["missing"] == 6 - want["ended"]
    # TLS ended: size index 0 (period 3), 1, 1, 2, 2 -> cpu_children = 10*(i+1) + 1
    tls_cpu = [11.0, 21.0, 21.0, 31.0, 31.0]
    assert items["tls"]["cpu_s_mean"] == pytest.approx(sum(tls_cpu) / 5)
    assert items["tls"]["cpu_s_median"] == 21.0
    bls_cpu = [21.0, 41.0, 41.0, 61.0, 61.0]
    assert items["bls_reference"]["cpu_s_mean"] == pytest.approx(sum(bls_cpu) / 5)
    assert items["bls_reference"]["cpu_s_median"] == 41.0


def test_false_alarms_in_sql_follow_the_rule(db, rows):
    """Every combination of outcome, detected and transit-free, counted by SQL and by the rule."""
    job = rows.job("rule")
    want = 0
    combos = list(itertools.product(("PASS", "FAIL", "UNDEFINED", None), (True, False, None), (0, 40, None)))
    for n, (outcome, detected, pixels) in enumerate(combos):
        results = {k: v for k, v in (("outcome", outcome), ("detected", detected),
                                     ("pixels_in_transit", pixels)) if v is not None}
        _search(rows, job, "tls", "done", {"n": n, "n_index": n}, results, cpu=1.0)
        want += ex.is_false_alarm(outcome, detected, pixels == 0)
    row = ex.tda_table(db, job)["items"][0]
    assert row["false_alarms"] == want and row["ended"] == len(combos)
    assert row["detections"] == sum(1 for o, _, p in combos if o == "PASS" and p != 0)
    assert row["transit_free"] == sum(1 for *_, p in combos if p == 0)
    # the PASS fraction leaves transit-free light curves out of its denominator
    assert row["pass_fraction"] == row["detections"] / (row["ended"] - row["transit_free"])


def test_timing_fits_the_exponent_per_tda(db, rows):
    job = rows.job("timing")
    lengths = (7, 14, 28, 365.25)
    for (t, tda), (i, length), (k, cadence) in itertools.product(
            enumerate(("tls", "bls_reference")), enumerate(lengths), enumerate((25, 600))):
        meta = {"cadence": cadence, "cadence_index": k, "lc_length": length, "lc_length_index": i}
        exponent = 1.5 if tda == "tls" else 1.0
        cpu = 0.01 * (length * 86400 / cadence) ** exponent      # time ~ samples ** exponent
        _search(rows, job, tda, "done", meta, {"outcome": "FAIL", "detected": False,
                                               "pixels_in_transit": 0}, cpu=cpu - 1.0, wall=cpu / 2)
    _search(rows, job, "tls", "failed", {"cadence": 25, "cadence_index": 0, "lc_length": 3.0,
                                         "lc_length_index": 9})
    assert ex.describe(db, job)["length_parameter"] == "lc_length"
    data = ex.timing(db, job)
    fits = {s["tda"]: s["fit"] for s in data["series"]}
    # the mean over cadences of c * L**a is again a power law of L with exponent a
    assert fits["tls"]["exponent"] == pytest.approx(1.5, rel=1e-9)
    assert fits["bls_reference"]["exponent"] == pytest.approx(1.0, rel=1e-9)
    assert data["missing"] == 1
    split = ex.timing(db, job, by="cadence", time="wall")
    assert len(split["series"]) == 4 and all(s["fit"]["exponent"] > 0.9 for s in split["series"])
    table = {r["tda"]: r for r in ex.tda_table(db, job)["items"]}
    assert table["tls"]["transit_free"] == 8 and table["tls"]["false_alarms"] == 0


def test_bad_choices_name_the_parameter(db, grid):
    job, _ = grid
    with pytest.raises(DiagnosticsError, match=r"x='nope'.*allowed: period, size"):
        ex.fraction(db, job, x="nope")
    with pytest.raises(DiagnosticsError, match="map_x and map_y must differ"):
        ex.completeness(db, job, x="size", y="size")
    with pytest.raises(DiagnosticsError, match="time='cpu2'"):
        ex.timing(db, job, time="cpu2")
    with pytest.raises(DiagnosticsError, match=r"length='label'.*not a loop parameter"):
        ex.timing(db, job, length="label")
    with pytest.raises(NotFound, match="no light-curve length"):
        ex.timing(db, job)
    with pytest.raises(NotFound, match="no job 999"):
        ex.describe(db, 999)


def test_a_loop_of_one_value_or_too_many_is_no_axis(db, rows, monkeypatch):
    monkeypatch.setattr(ex, "MAX_AXIS_VALUES", 4)
    job = rows.job("odd loops")
    for i in range(6):
        meta = {"seed": i, "seed_index": i, "cadence": 900, "cadence_index": 0, "size": i % 2, "size_index": i % 2}
        _search(rows, job, "tls", "done", meta, {"outcome": "FAIL", "detected": False}, cpu=1.0)
    described = ex.describe(db, job)
    assert [p["name"] for p in described["parameters"]] == ["size"]
    assert described["too_many_values"] == ["seed"]
    with pytest.raises(DiagnosticsError, match="x='seed'.*more than the 4 values"):
        ex.fraction(db, job, x="seed")
    with pytest.raises(DiagnosticsError, match="x='cadence'.*1 value among the searches"):
        ex.fraction(db, job, x="cadence")


def test_string_parameters_and_a_job_without_searches(db, rows):
    job = rows.job("strings")
    for i, tool in enumerate(("psls", "batman")):
        meta = {"synthesis_tool": tool, "synthesis_tool_index": i}
        _search(rows, job, "qats", "done", meta, {"outcome": "PASS", "detected": True,
                                                  "pixels_in_transit": 12}, cpu=3.0)
    data = ex.fraction(db, job)
    assert data["x"] == "synthesis_tool" and data["numeric"] is False
    assert data["values"] == ["batman", "psls"]
    assert [p["pass_fraction"] for p in data["series"][0]["points"]] == [1.0, 1.0]
    empty = rows.job("empty")
    rows.task(empty, "verify", state="done", params={"metadata": {"size": 1.0, "size_index": 0}})
    described = ex.describe(db, empty)
    assert described["plots"] == {"fraction": False, "completeness": False, "timing": False}
    assert ex.report(db, empty)["tda_table"] == []


def test_eas_report_command(eas, grid):
    job, expected = grid
    rc, out, err = eas("report", job, "--x", "size")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == f"job {job}: TDAs bls_reference, tls; loop parameters period (2 values), size (3 values)"
    tls = next(line.split() for line in lines if line.startswith("tls "))
    assert tls[1:7] == ["6", "5", "1", str(expected["tls"]["det"]), "2", "0"]
    assert any("PASS fraction against size" in line for line in lines)
    assert any(line.startswith("completeness over") for line in lines)
    data = eas.json("report", job, "--map-x", "period", "--map-y", "size")
    assert data["completeness"]["x"] == "period" and data["timing"] is None
    rc, _, err = eas("report", job, "--x", "nope")
    assert rc == 2 and "x='nope'" in err
    rc, _, err = eas("report", 999)
    assert rc == 1 and "no job 999" in err
