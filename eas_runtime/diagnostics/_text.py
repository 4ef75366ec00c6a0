"""Plain-text rendering of the diagnostics answers (the ``eas`` subcommands without --json)."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from eas_runtime.diagnostics.tables import cell


def _short(value: Any, width: int = 60) -> str:
    text = cell(value).replace("\n", " ")
    return text if len(text) <= width else text[:width - 1] + "…"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], width: int = 60) -> list[str]:
    """Aligned columns: numbers right-aligned, text left-aligned, long cells shortened."""
    body = [[_short(v, width) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    numeric = [True] * len(headers)
    for row in body:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
            if text and not _is_number(text):
                numeric[i] = False
    fmt = lambda texts: "  ".join(  # noqa: E731
        (t.rjust(w) if num else t.ljust(w)) for t, w, num in zip(texts, widths, numeric)).rstrip()
    return [fmt(list(headers))] + [fmt(row) for row in body]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def footer(page: dict, what: str) -> list[str]:
    if page["pages"] <= 1:
        return [f"{page['total']} {what}"]
    first = page["page"] * page["page_size"] + 1 if page["items"] else 0
    last = page["page"] * page["page_size"] + len(page["items"])
    return [f"{what} {first}-{last} of {page['total']} (page {page['page']} of 0-{page['pages'] - 1}; "
            f"--page N for another)"]


def tree(data: dict) -> list[str]:
    lines, job = [], None
    for item in data["items"]:
        if item["job_id"] != job:
            job = item["job_id"]
            info = data["jobs"].get(str(job), {})
            cancelled = "  (cancelled)" if info.get("cancelled") else ""
            lines.append(f"job {job}  {info.get('name', '')}{cancelled}")
        name = f"  {item['name']}" if item["name"] else ""
        lines.append(f"{'    ' * (item['depth'] + 1)}{item['task_id']}  {item['task_type']}{name}  "
                     f"[{item['state']}]  attempts {item['attempts']}  {item['path']}".rstrip())
    return lines + footer(data, "tasks")


def progress(data: dict) -> list[str]:
    states = data["states"]
    headers = ["task type", "total"] + states
    rows = [[t["task_type"], t["total"]] + [_count(t, st) for st in states] for t in data["task_types"]]
    rows.append(["all", data["all"]["total"]] + [_count(data["all"], st) for st in states])
    return table(headers, rows)


def _count(entry: dict, state: str) -> str:
    n = entry["counts"][state]
    return f"{n} ({entry['percent'][state]:.1f}%)" if n else "0"


def errors(data: dict) -> list[str]:
    lines = []
    for e in data["items"]:
        lines.append(f"--- attempt {e['attempt_id']} (#{e['number']}) of task {e['task_id']} "
                     f"{e['task_type']}{' ' + e['name'] if e['name'] else ''}, job {e['job_id']}: "
                     f"{e['kind']} error, ended {e['ended']}" + (f" on {e['host']}" if e["host"] else ""))
        lines.extend(e["error"].rstrip("\n").splitlines() or ["(no error text)"])
    return lines + footer(data, "failed attempts")


def dead_letters(data: dict) -> list[str]:
    lines = []
    for d in data["items"]:
        lines.append(f"--- dead letter {d['id']} at {d['time']} from {d['component']}: "
                     f"{d['event_type'] or '(no event type)'} {d['event_id']}")
        lines.extend(d["reason"].splitlines())
    return lines + footer(data, "dead letters")


def timing_groups(data: dict) -> list[str]:
    rows = [[g["job_id"], g["job_name"], g["task_type"], g["tasks"], g["done"], g["failed"],
             _num(g["wall_s_mean"]), _num(g["wall_s_max"]), _num(g["cpu_s_total"])] for g in data["items"]]
    return table(["job", "job name", "task type", "tasks", "done", "failed", "mean wall_s", "max wall_s",
                  "total cpu_s"], rows) + footer(data, "(job, task type) pairs") + \
        ["eas timings --job J --type T: one row per task"]


def _num(value) -> str:
    return "" if value is None else f"{value:.3f}"


def rows_table(data: dict, what: str) -> list[str]:
    columns = data["columns"]
    lines = table(columns, [[row.get(c) for c in columns] for row in data["items"]], width=40)
    return lines + footer(data, what)


def inflight(data: dict) -> list[str]:
    att, dl, dead = data["attempts"], data["deliveries"], data["dead_letters"]
    lines = [f"claimed attempts: {att['total']}"]
    if att["items"]:
        lines += ["  " + line for line in table(
            ["attempt", "task", "job", "task type", "#", "attempt", "task state", "host", "pid",
             "heartbeat age s", "queued for s"],
            [[a["attempt_id"], a["task_id"], a["job_id"], a["task_type"], a["number"], a["attempt_state"],
              a["task_state"], a["host"], a["pid"], a["heartbeat_age_s"], a["queued_for_s"]]
             for a in att["items"]])]
    lines.append(f"events awaiting delivery: {dl['total']}")
    if dl["items"]:
        lines += ["  " + line for line in table(
            ["delivery", "event type", "trigger", "tries", "due in s", "last error"],
            [[d["id"], d["event_type"], d["trigger"], d["tries"], d["due_in_s"], d["last_error"]]
             for d in dl["items"]])]
    lines.append(f"dead letters: {dead['count']}")
    for d in dead["newest"]:
        lines.append(f"  {d['time']}  {d['component']}  {d['event_type']}  {_short(d['reason'], 100)}")
    if max(att["pages"], dl["pages"]) > 1:
        lines.append(f"page {att['page']} (--page N for another)")
    return lines


def logs(data: dict) -> list[str]:
    lines = []
    for m in data["items"]:
        where = f"attempt {m['attempt_id']} task {m['task_id']}" if m["attempt_id"] else "-"
        text = m["text"].rstrip("\n").splitlines() or [""]
        lines.append(f"{m['time']}  {m['severity']:<8}  [{where}]  {text[0]}")
        lines.extend("    " + t for t in text[1:])
    return lines + footer(data, "log lines")


def task(data: dict) -> list[str]:
    lines = [f"task {data['task_id']}  {data['task_type']}  {data['name']}  [{data['state']}]",
             f"  job {data['job_id']} {data['job_name']}  path {data['path']}  parent {data['parent_id']}  "
             f"children {data['children']}",
             f"  working directory {data['working_directory']}"]
    if data["params"]:
        lines.append(f"  params {cell(data['params'])}")
    meta = {k: v for k, v in data["metadata"].items() if k not in ("path", "job_name")}
    if meta:
        lines.append(f"  metadata {cell(meta)}")
    for label in ("inputs", "outputs"):
        for f in data[label]:
            qc = ", ".join(f"v{v['id']} {'QC ok' if v['passed_qc'] else 'QC failed'}" for v in f["versions"])
            lines.append(f"  {label[:-1]} {f['name']}: {f['key']}  ({qc or 'no version yet'})")
    for src in data["metadata_from"]:
        lines.append(f"  metadata from task {src['task_id']} {src['task_type']} {src['name']}")
    for a in data["attempts"]:
        lines.append(f"  attempt {a['number']} (id {a['attempt_id']}): {a['state']}"
                     + (f", {a['error_kind']} error" if a["error"] else "")
                     + (f", host {a['host']} pid {a['pid']}" if a["host"] else "")
                     + f", started {a['started']}, ended {a['ended']}, wall {a['wall_s']} s, "
                       f"cpu {a['cpu_s']} s, {a['log_lines']} log lines")
        if a["metadata"]:
            lines.append(f"    results {cell(a['metadata'])}")
        if a["error_text"]:
            lines.extend("    " + t for t in a["error_text"].rstrip("\n").splitlines())
    return lines


def jobs(data: dict) -> list[str]:
    """The table, then one line per refused job with its reason in full (a table cell would
    cut it)."""
    states = data["states"]
    rows = [[j["job_id"], j["name"] + (" (cancelled)" if j["cancelled"] else "")
             + (" (rejected)" if j.get("rejected") is not None else ""), j["total"]]
            + [j["counts"][st] for st in states] for j in data["items"]]
    refused = [f"job {j['job_id']} rejected: {j['rejected']}" for j in data["items"] if j.get("rejected") is not None]
    return table(["job", "name", "tasks"] + states, rows) + refused + footer(data, "jobs")


def _value(value) -> Any:
    """A loop value: floats to 6 significant digits (log-spaced loops have 15)."""
    return f"{value:.6g}" if isinstance(value, float) else value


def experiment_report(data: dict) -> list[str]:
    """``eas report``: the TDA table, then one line per point of each plot the job allows."""
    if not data["task_types"]:
        return [f"job {data['job_id']} has no transit searches (task types transit_search_*)"]
    lines = [f"job {data['job_id']}: TDAs {', '.join(data['tdas'])}; loop parameters "
             + (", ".join(f"{p['name']} ({p['count']} values)" for p in data["parameters"]) or "none")]
    lines += table(["TDA", "searches", "ended", "missing", "detections", "significant", "false alarms",
                    "transit-free", "PASS fraction", "cpu_s mean", "cpu_s median"],
                   [[t["tda"], t["tasks"], t["ended"], t["missing"], t["detections"], t["significant"],
                     t["false_alarms"], t["transit_free"], _num(t["pass_fraction"]), _num(t["cpu_s_mean"]),
                     _num(t["cpu_s_median"])] for t in data["tda_table"]])
    f = data.get("fraction")
    if f:
        lines += ["", f"PASS fraction against {f['x']} (95 % Wilson interval):"]
        lines += table(["series", f["x"], "ended", "missing", "PASS fraction", "low", "high"],
                       [[s["name"], _value(p[f["x"]]), p["ended"], p["missing"], _num(p["pass_fraction"]),
                         _num(p["low"]), _num(p["high"])] for s in f["series"] for p in s["points"]])
    c = data.get("completeness")
    if c:
        lines += ["", f"completeness over {c['x']} x {c['y']}: "
                  + "; ".join(f"{m['tda']} {len(m['cells'])} cells" for m in c["maps"])
                  + " (the cells: --json, or the site's completeness.csv)"]
    t = data.get("timing")
    if t:
        lines += ["", f"mean {t['time']} time per search against {t['length']} [d]:"]
        lines += table(["series", t["length"], "timed", "mean s", "exponent"],
                       [[s["name"], _value(p[t["length"]]), p["timed"], _num(p["mean_s"]),
                         _num((s["fit"] or {}).get("exponent"))] for s in t["series"] for p in s["points"]])
    return lines
