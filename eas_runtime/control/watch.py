"""Watch rules: every object that lands under a key prefix gets its own job.

A rule binds a prefix either to a **job template** (a task-chain job file, e.g.
``examples/jobs/standard_search.json``) or to a plain sequence of task types.

Template: the job is compiled for each upload with these metadata, which every expression of
the template can read and every task inherits:

==============  ===========================================  ==============================
``input_key``   the object's key                             ``inbox/tess/star_1.fits``
``input_path``  the same as a file name from the store root  ``/inbox/tess/star_1.fits``
``input_name``  its file name                                ``star_1.fits``
``input_stem``  the file name without the known suffixes     ``star_1``
``input_etag``  the first 8 hex digits of its MD5/ETag       ``1a2b3c4d``
``input_dir``   the folder of the key                        ``inbox/tess``
``input_prefix`` the rule's prefix                           ``inbox/tess/``
==============  ===========================================  ==============================

so a template names the object as ``"inputs": {"lightcurve": "(metadata['input_path'])"}``
and its products as ``"'{input_stem}.fits'.format(**metadata)"``. A template without a
``working_directory`` works in ``processed/<input_stem>-<input_etag>/``; one with its own must
make it depend on the object (``eas watch add`` checks this), because the job of an upload is
recognised by its folder: the same content uploaded twice under the same key is processed once,
new content gets a new folder.

Chain of task types (``--tasks``): the upload is the first task's ``lightcurve`` input and
every task type that makes a light curve (:data:`LIGHTCURVE_MAKERS`) hands its ``lightcurve``
output to the next one.
"""
from __future__ import annotations

import posixpath
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from eas_runtime.db.models import WatchRule
from eas_runtime.jobs import CompiledJob, JobError, PlannedTask, compile_job

#: Task types whose ``lightcurve`` output is the light curve the next task in a chain reads.
LIGHTCURVE_MAKERS = {"ingest_external_lcs", "binning", "detrend", "multiply",
                     "synthesis_batman", "synthesis_psls"}
OUTPUT_PREFIX = "processed"
_SUFFIXES = re.compile(r"(\.(gz|bz2|xz|fits|fit|fts|csv|txt|dat|tbl|lc))+$", re.IGNORECASE)


_W = WatchRule.__table__
_ENABLED = select(_W.c.id, _W.c.prefix, _W.c.task_types, _W.c.job_template, _W.c.params).where(
    _W.c.enabled.is_(True))


def matching_rules(session: Session | Connection, key: str) -> list:
    """The enabled rules whose prefix ``key`` starts with (rows with ``id``, ``prefix``,
    ``task_types``, ``job_template`` and ``params``, as :func:`job_for_upload` reads them)."""
    if key.startswith(OUTPUT_PREFIX + "/"):
        return []
    return [r for r in session.execute(_ENABLED).all() if key.startswith(r.prefix)]


def stem_of(key: str) -> str:
    name = _SUFFIXES.sub("", posixpath.basename(key)) or "object"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def upload_metadata(prefix: str, key: str, etag: str) -> dict[str, str]:
    """What a template's expressions know about the object that triggered it."""
    return {"input_key": key, "input_path": "/" + key, "input_name": posixpath.basename(key),
            "input_stem": stem_of(key), "input_etag": (etag or "noetag")[:8],
            "input_dir": posixpath.dirname(key), "input_prefix": prefix}


def job_for_upload(rule: WatchRule, key: str, etag: str) -> CompiledJob:
    if rule.job_template:
        return compile_template(rule.job_template, rule.prefix, key, etag)
    return _chain(rule, key, etag)


def compile_template(template: Any, prefix: str, key: str, etag: str) -> CompiledJob:
    meta = upload_metadata(prefix, key, etag)
    return compile_job(template, metadata=meta,
                       default_working_directory=f"{OUTPUT_PREFIX}/{meta['input_stem']}-{meta['input_etag']}",
                       default_job_name=f"watch {prefix} {meta['input_name']}")


def check_template(template: Any, prefix: str) -> CompiledJob:
    """Compile ``template`` for example uploads; JobError when it does not compile, or when two
    uploads would work in the same folder: two objects, or two contents of one key (a job is
    recognised by its folder, so a template whose folder ignores ``input_etag`` would process
    only the first content ever uploaded to a key)."""
    base = prefix if prefix.endswith("/") or not prefix else prefix + "/"
    first = compile_template(template, prefix, f"{base}example_a.fits", "0123456789abcdef")
    second = compile_template(template, prefix, f"{base}example_b.fits", "fedcba9876543210")
    again = compile_template(template, prefix, f"{base}example_a.fits", "fedcba9876543210")
    if first.working_directory in (second.working_directory, again.working_directory):
        what = ("every upload's job" if first.working_directory == second.working_directory
                else "each content uploaded to a key")
        raise JobError(f"working_directory: {what} needs its own folder, but this template "
                       f"puts them in {first.working_directory or '(the store root)'!r}; use e.g. "
                       "\"'processed/{input_stem}-{input_etag}'.format(**metadata)\"")
    if not first.tasks:
        raise JobError("task_list: the template has no task to run")
    return first


def _chain(rule: WatchRule, key: str, etag: str) -> CompiledJob:
    stem = stem_of(key)
    wd = f"{OUTPUT_PREFIX}/{stem}-{(etag or 'noetag')[:8]}"
    job_name = f"watch {rule.prefix} {posixpath.basename(key)}"
    current = key
    tasks = []
    for i, task_type in enumerate(rule.task_types):
        outputs = {}
        if task_type in LIGHTCURVE_MAKERS:
            outputs["lightcurve"] = f"{wd}/{stem}.{i}.{task_type}.fits"
        tasks.append(PlannedTask(path=f"watch[{i}]", task_type=task_type, name=task_type,
                                 working_directory=wd, job_name=job_name,
                                 params=dict(dict(rule.params or {}).get(task_type, {})),
                                 inputs={"lightcurve": current}, outputs=outputs))
        current = outputs.get("lightcurve", current)
    return CompiledJob(job_name=job_name, working_directory=wd, roots=tasks)
