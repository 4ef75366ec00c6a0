"""Entry point of ``ingest_external_lcs``: any supported light-curve file -> product FITS."""
from eas_runtime.lightcurve import write_lightcurve
from eas_runtime.wrapper import TaskResult, cloud_task
from functions.ingest_external_lcs.science import ingest


@cloud_task("ingest_external_lcs")
def handle(ctx):
    source = ctx.input("lightcurve")
    lc = ingest(source, metadata=dict(ctx.input_metadata.get("lightcurve", {})))
    out = ctx.output_path("lightcurve", ".fits")
    write_lightcurve(lc, out)
    return TaskResult(outputs={"lightcurve": out}, output_metadata={"lightcurve": dict(lc.meta)},
                      metadata={"n_samples": len(lc.time), "source": source.name})
