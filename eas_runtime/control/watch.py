"""Watch rules: every object that lands under a key prefix gets its own job.

The simplest rule binds a prefix to a sequence of task types, e.g. ``inbox/`` ->
``ingest_external_lcs, verify, transit_search_bls_reference``. The chain passes one light curve
along: the upload is the first task's ``lightcurve`` input, and every task type that makes a
light curve (:data:`LIGHTCURVE_MAKERS`) hands its ``lightcurve`` output to the next one.

Each job works in ``<output_prefix>/<stem>-<etag8>/``: the same content uploaded twice under the
same key is recognised (same folder) and not processed twice; new content gets a new folder.
"""
from __future__ import annotations

import posixpath
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from eas_runtime.db.models import WatchRule
from eas_runtime.jobs import CompiledJob, TaskSpec

#: Task types whose ``lightcurve`` output is the light curve the next task in a chain reads.
LIGHTCURVE_MAKERS = {"ingest_external_lcs", "binning", "detrend", "multiply",
                     "synthesis_batman", "synthesis_psls"}
OUTPUT_PREFIX = "processed"
_SUFFIXES = re.compile(r"(\.(gz|bz2|xz|fits|fit|fts|csv|txt|dat|tbl|lc))+$", re.IGNORECASE)


def matching_rules(session: Session, key: str) -> list[WatchRule]:
    rules = session.scalars(select(WatchRule).where(WatchRule.enabled.is_(True))).all()
    return [r for r in rules if key.startswith(r.prefix) and not key.startswith(OUTPUT_PREFIX + "/")]


def stem_of(key: str) -> str:
    name = _SUFFIXES.sub("", posixpath.basename(key)) or "object"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def job_for_upload(rule: WatchRule, key: str, etag: str) -> CompiledJob:
    stem = stem_of(key)
    wd = f"{OUTPUT_PREFIX}/{stem}-{(etag or 'noetag')[:8]}"
    job_name = f"watch {rule.prefix} {posixpath.basename(key)}"
    current = key
    tasks = []
    for i, task_type in enumerate(rule.task_types):
        outputs = {}
        if task_type in LIGHTCURVE_MAKERS:
            outputs["lightcurve"] = f"{wd}/{stem}.{i}.{task_type}.fits"
        tasks.append(TaskSpec(path=f"watch[{i}]", task_type=task_type, name=task_type, job_name=job_name,
                              working_directory=wd, params=dict(rule.params or {}).get(task_type, {}),
                              inputs={"lightcurve": current}, outputs=outputs))
        current = outputs.get("lightcurve", current)
    return CompiledJob(job_name=job_name, working_directory=wd, tasks=tasks)
