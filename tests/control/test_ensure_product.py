"""ensure_product: a concurrent creator's row is returned; any other integrity error is raised
(it used to give None instead of a product)."""
from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from eas_runtime.db.products import ensure_product


def test_a_known_key_gives_its_product(resources):
    with resources.db.session() as s:
        first = ensure_product(s, "a/lc.fits", semantic_type="lightcurve")
        s.flush()
        assert ensure_product(s, "a/lc.fits").id == first.id


def test_an_integrity_error_that_is_no_concurrent_creator_is_raised(resources):
    with pytest.raises(IntegrityError):         # no task 999999 to be the generator
        with resources.db.session() as s:
            ensure_product(s, "a/lc.fits", generator_task_id=999_999)
