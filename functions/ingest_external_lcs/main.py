"""Entry point of ``ingest_external_lcs``: light-curve files of any supported format -> product
FITS. Input ``lightcurve`` (one object), or parameter ``input_path`` (a glob of object keys:
each match becomes a product; objects ingested before with the same content are skipped).
Parameter ``lc_type``: a reader to force (default: recognised from the content); ``columns``,
``select``, ``time_system``, ``time_offset``, ``time_unit``: text-table reader options.
"""
from eas_runtime.lightcurve import write_lightcurve
from eas_runtime.wrapper import TaskResult, cloud_task
from functions.ingest_external_lcs import science


@cloud_task("ingest_external_lcs")
def handle(ctx):
    fmt = science.lc_format(ctx.params.get("lc_type"))
    options = science.reader_options(ctx.params)
    if ctx.params.get("input_path") is None:
        source = ctx.input("lightcurve")
        lc = science.ingest(source, metadata=dict(ctx.input_metadata.get("lightcurve", {})), fmt=fmt,
                            options=options)
        out = ctx.output_path("lightcurve", ".fits")
        write_lightcurve(lc, out)
        return TaskResult(outputs={"lightcurve": out}, output_metadata={"lightcurve": dict(lc.meta)},
                          metadata={"n_samples": len(lc.time), "source": source.name})
    pattern = science.glob_pattern(ctx.params["input_path"])
    store = ctx.pipeline.store
    objects = [(i.key, i.etag) for i in store.list(science.listing_prefix(pattern))
               if science.key_matches(i.key, pattern)]
    earlier = _products_named(ctx.pipeline.db, [science.product_name(k, e) for k, e in objects])
    batch = science.ingest_matching(objects, store.get_file, ctx.workdir, fmt=fmt, earlier=earlier,
                                    options=options)
    return TaskResult(outputs=batch.outputs, output_metadata=batch.output_metadata,
                      output_types={name: "lightcurve" for name in batch.outputs},
                      metadata=batch.summary(pattern))


def _products_named(db, names):
    """File name -> key of a product with a QC-passed version whose key ends in it."""
    from sqlalchemy import select

    from eas_runtime.db.models import Product, ProductVersion
    found = {}
    with db.read() as s:
        for name in names:
            key = s.scalar(select(Product.key).join(ProductVersion).where(
                Product.key.endswith("_" + name, autoescape=True),
                ProductVersion.passed_qc.is_(True)).limit(1))
            if key:
                found[name] = key
    return found
