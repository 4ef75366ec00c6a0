"""Entry point of ``stitch``: all ingested segments of the input light curve's star as one
light curve (see science.py). Input ``lightcurve`` (an ingested segment: its ``star_id`` names
the star); output ``lightcurve``. Result metadata: star_id, n_segments, segments, n_samples.

The star's segments are the newest QC-passed version of every light curve made by
``ingest_external_lcs`` that the task database files under the star (``products.star_id``).
The input is always one of them; without a star identity it is stitched alone, with a warning.
"""
import hashlib
from pathlib import Path

from eas_runtime.lightcurve import read_lightcurve, write_lightcurve
from eas_runtime.wrapper import TaskResult, cloud_task
from functions.stitch.science import MAX_SEGMENTS, TASK, Segment, stitch


@cloud_task(TASK)
def handle(ctx):
    source = ctx.input("lightcurve")
    lc = read_lightcurve(source)
    recorded = ctx.input_metadata.get("lightcurve", {}) or {}
    star = str(lc.meta.get("star_id") or recorded.get("star_id") or "").strip()
    if star and not lc.meta.get("star_id"):
        lc = lc.with_meta(star_id=star)
    segments = _segments_of(ctx.pipeline, star, ctx.workdir) if star and ctx.pipeline else []
    digest = hashlib.md5(source.read_bytes()).hexdigest()
    if not any(etag == digest for _, etag in segments):
        segments.append((Segment(lc, source.name), digest))
    if not star:
        ctx.log.warning("the light curve names no star (star_id): stitched alone")
    stitched = stitch([s for s, _ in segments], star_id=star or None)
    out = write_lightcurve(stitched, ctx.output_path("lightcurve", ".fits"))
    return TaskResult(outputs={"lightcurve": out},
                      output_metadata={"lightcurve": dict(stitched.meta)},
                      metadata={"star_id": star or None, "n_segments": stitched.meta["n_segments"],
                                "segments": stitched.meta["segments"],
                                "n_samples": len(stitched.time),
                                "warnings": stitched.meta.get("warnings")})


def _segments_of(resources, star: str, workdir: Path) -> list[tuple[Segment, str]]:
    """(segment, MD5) of each light curve ingested for ``star``, newest QC-passed version, from
    the pipeline's task database and store."""
    from sqlalchemy import func, select

    from eas_runtime.db.models import Product, ProductVersion, Task
    with resources.db.read() as s:
        newest = (select(func.max(ProductVersion.id)).join(Product)
                  .join(Task, Task.id == Product.generator_task_id)
                  .where(Product.star_id == star, Product.semantic_type == "lightcurve",
                         Task.task_type == "ingest_external_lcs", ProductVersion.passed_qc.is_(True))
                  .group_by(Product.id).limit(MAX_SEGMENTS + 1))
        rows = s.execute(select(Product.key, ProductVersion.etag, ProductVersion.object_version)
                         .join(Product, Product.id == ProductVersion.product_id)
                         .where(ProductVersion.id.in_(newest.scalar_subquery()))
                         .order_by(Product.key)).all()
    folder = workdir / "segments"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (key, etag, object_version) in enumerate(rows):
        path = folder / f"{i}_{Path(key).name}"
        resources.store.get_file(key, path, version_id=object_version)
        out.append((Segment(read_lightcurve(path), key), (etag or "").strip('"')))
    return out
