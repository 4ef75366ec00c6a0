"""Product rows as the wrapper records its outputs (Core statements, one insert for a new key)."""
from __future__ import annotations

from sqlalchemy import func, select

from eas_runtime.db.models import Job, Product, Task
from eas_runtime.db.products import ensure_product_id


def test_a_new_key_is_created_once_and_completed_later(resources):
    db = resources.db
    with db.session() as s:
        job = Job(name="p")
        s.add(job)
        s.flush()
        task = Task(job_id=job.id, task_type="null")
        s.add(task)
        s.flush()
        task_id = task.id
    with db.begin() as conn:
        first, created = ensure_product_id(conn, "work/a.fits")
        assert created
        again, created_again = ensure_product_id(conn, "work/a.fits", semantic_type="lightcurve",
                                                 generator_task_id=task_id)
        assert (again, created_again) == (first, False)
        ensure_product_id(conn, "work/a.fits", semantic_type="other", generator_task_id=None)
    with db.read() as s:
        product = s.get(Product, first)
        assert (product.key, product.directory, product.filename) == ("work/a.fits", "work", "a.fits")
        assert product.mime_type == "application/fits"
        # Filled in when missing, never overwritten.
        assert (product.semantic_type, product.generator_task_id) == ("lightcurve", task_id)
        assert s.scalar(select(func.count()).select_from(Product)) == 1
