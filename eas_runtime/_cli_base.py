"""What every ``eas`` subcommand module shares: the settings and resources of the pipeline a
command works on, and the argparse types that refuse bad numbers with one line.

Kept apart from :mod:`eas_runtime.cli` (the parser and the top-level commands) so that the
command modules (diagnostics, deploy, invoke, planets) import this and never ``eas_runtime.cli``:
no module of the command line imports another that imports it back.
"""
from __future__ import annotations

import argparse

from eas_runtime.diagnostics._common import MAX_ID, shown
from eas_runtime.settings import Settings

#: How each command finds its pipeline when not told (eas_runtime.discovery): ``creates`` makes
#: its own in ./.eas (never another shell's running one), ``optional`` works without one;
#: ``reads`` needs one with a task database; every other command needs one and says so in one
#: line when there is none.
PIPELINE_MODE = {"up": "creates", "demo": "creates", "down": "optional", "db": "optional", "serve": "optional",
                 "validate": "optional", "deploy": "optional", "invoke": "optional",
                 **dict.fromkeys(("status", "jobs", "tree", "progress", "errors", "timings", "passfail", "report",
                                  "inflight", "logs", "task", "candidates", "cancel", "retry"), "reads")}


def settings(args, *, mode: str | None = None) -> Settings:
    """The settings of the pipeline this command works on: flags > ``EAS_*`` > a running
    ``eas up`` > ``./.eas`` (eas_runtime.discovery)."""
    from eas_runtime.discovery import locate
    mode = mode or PIPELINE_MODE.get(getattr(args, "command", ""), "needs")
    flags = {"home": args.home, "store": args.store, "database_url": args.database_url,
             "broker_url": args.broker_url, "log_level": args.log_level}
    return locate(flags, mode=mode)


def resources(args):
    from eas_runtime.resources import Resources
    return Resources(settings(args))


def seconds(text: str) -> float:
    """An argparse type: a duration in seconds, finite and not negative."""
    import math
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or value > 1e7:
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0 to 1e7, got {shown(text)}")
    return value


def whole(low: int, high: int, what: str = "a whole number"):
    """An argparse type: a whole number from ``low`` to ``high``, else argparse's one-line
    refusal (exit 2) naming the option, the range and the value; a number past the range
    would otherwise overflow the database driver (a traceback)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:      # also past 4300 digits
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {what} from {low} to {high}, got {shown(text)}")
        return value
    parse.__name__ = what
    return parse


#: An id of a job, task or attempt.
row_id = whole(1, MAX_ID, "an id, a whole number")
