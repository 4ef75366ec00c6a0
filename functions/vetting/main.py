"""Entry point of ``vetting``: a verdict and its reasons for each candidate of a star.

Inputs ``lightcurve`` (the searched, detrended light curve) and ``candidates`` (the table of
``planet_search``); parameters ``stellar_density`` or ``stellar_mass`` and ``stellar_radius``
[solar], ``tls`` (true: fit each periodic candidate with TLS too). Result metadata:
n_candidates, n_planet_candidates, n_false_positives, verdicts; output ``vetted`` (ECSV table).
The vetted candidates enter the catalogue.
"""
from eas_runtime.lightcurve import search as common
from eas_runtime.planets.table import read_rows, write_ecsv
from eas_runtime.task_api import ParameterError, TaskResult
from eas_runtime.wrapper import cloud_task
from functions.vetting.science import TASK, density_from, vet_candidates


@cloud_task(TASK)
def handle(ctx):
    lc = common.read_input(ctx)
    candidates, table_meta = read_rows(ctx.input("candidates"))
    tls = ctx.params.get("tls", True)
    if not isinstance(tls, bool):
        raise ParameterError(f"parameter 'tls' of vetting must be true or false, got {tls!r}")
    rows, meta = vet_candidates(lc, candidates, density=density_from(ctx.params),
                                tls_confirm=tls, cpus=ctx.cpus)
    table_meta.update(task_type=TASK, stellar_density=meta["stellar_density"])
    vetted = write_ecsv(rows, ctx.output_path("vetted", ".ecsv"), table_meta)
    star = {"star_id": table_meta.get("star_id") or lc.meta.get("star_id") or "",
            "mission": table_meta.get("mission") or lc.meta.get("mission") or "",
            "star_name": table_meta.get("object") or lc.meta.get("object") or ""}
    return TaskResult(outputs={"vetted": vetted}, metadata=meta,
                      units={"stellar_density": "solar"} if meta["stellar_density"] else {},
                      output_types={"vetted": "candidates"},
                      candidates=[{**star, **row} for row in rows])
