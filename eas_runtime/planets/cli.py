"""``eas candidates``: the catalogue of vetted transit candidates.

Filters as the site's ``/candidates``; ``--json``, ``--csv`` and ``--votable FILE`` export every
match; ``--report ID`` writes that candidate's one-page report (PNG and PDF) into ``--out``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from eas_runtime.diagnostics.cli import _command, _context, row_id, whole

from . import catalogue


def _filters(args) -> catalogue.Filters:
    return catalogue.Filters.of(verdict=args.verdict, star=args.star, kind=args.kind,
                                job=args.job, min_snr=args.min_snr, period_min=args.period_min,
                                period_max=args.period_max, sort=args.sort, order=args.order)


def _text(value, digits: int = 6) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


@_command
def cmd_candidates(args) -> int:
    db, _ = _context(args)
    if args.report is not None:
        from eas_runtime._cli_base import resources as _resources
        store = _resources(args).store
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        from eas_runtime.lightcurve import FormatError
        from eas_runtime.site._product_store import Superseded
        for fmt in ("png", "pdf"):
            path = out / f"candidate_{args.report}.{fmt}"
            try:
                path.write_bytes(catalogue.report(db, store, args.report, fmt))
            except (Superseded, FormatError) as exc:
                print(f"eas candidates: candidate {args.report}: {exc}", file=sys.stderr)
                return 1
            print(path)
        return 0
    filters = _filters(args)
    if args.json or args.csv or args.votable:
        from . import table as ctable     # numpy and astropy: only when exporting
        rows = catalogue.export_rows(db, filters)
        if args.votable:
            Path(args.votable).write_bytes(ctable.export(rows, "votable"))
            print(f"{len(rows)} candidates written to {args.votable}", file=sys.stderr)
        if args.json:
            print(json.dumps(rows, indent=1, default=str))
        elif args.csv:
            sys.stdout.write(ctable.export(rows, "csv").decode())
        return 0
    data = catalogue.query(db, filters, page=args.page, page_size=args.page_size)
    counts = ", ".join(f"{n} {v}" for v, n in sorted(data["counts"].items())) or "none"
    print(f"{data['total']} candidates ({counts}); page {data['page']} of "
          f"{data['pages'] - 1}, sorted by {filters.sort}")
    header = ("id", "star", "#", "kind", "period [d]", "epoch [d]", "dur [h]", "depth [ppm]",
              "S/N", "verdict", "reasons")
    print("  ".join(header))
    for r in data["items"]:
        star = r["star_id"] or r["star_name"] or r["lightcurve_key"].rsplit("/", 1)[-1]
        print("  ".join([str(r["id"]), star, str(r["number"]), r["kind"], _text(r["period"], 8),
                         _text(r["epoch"], 9), _text((r["duration"] or 0) * 24, 3),
                         _text(r["depth"], 4), _text(r["snr"], 3), r["verdict"],
                         "; ".join(r["reasons"]) or "-"]))
    return 0


def add_commands(sub) -> None:
    s = sub.add_parser("candidates", help="vetted transit candidates (the catalogue): list, "
                                          "filter, export (JSON, CSV, VOTable), reports")
    s.add_argument("--verdict", help="pc (planet candidate) or fp (false positive)")
    s.add_argument("--star", help="part of the star's identifier or name (any case)")
    s.add_argument("--kind", choices=catalogue.KINDS)
    s.add_argument("--job", type=row_id)
    s.add_argument("--min-snr", dest="min_snr", type=float)
    s.add_argument("--period-min", dest="period_min", type=float, help="[d]")
    s.add_argument("--period-max", dest="period_max", type=float, help="[d]")
    s.add_argument("--sort", choices=sorted(catalogue.SORTS), default="snr")
    s.add_argument("--order", choices=("asc", "desc"))
    s.add_argument("--page", type=whole(0, 10**6, "a page number"), default=0)
    s.add_argument("--page-size", dest="page_size", type=whole(1, 1000, "a page size"),
                   default=50)
    out = s.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="every match as JSON")
    out.add_argument("--csv", action="store_true", help="every match as CSV")
    s.add_argument("--votable", metavar="FILE", help="write every match as a VOTable")
    s.add_argument("--report", type=row_id, metavar="ID",
                   help="write the candidate's one-page report (PNG and PDF)")
    s.add_argument("--out", default=".", help="folder of --report's files (default: here)")
    s.set_defaults(fn=cmd_candidates)
