"""products.star_id: the star a file is of, to group products per star; candidates.n_segments

Set when an attempt records its outputs: the light curve's own ``star_id`` metadata (ingest
reads it from headers, file names or upload metadata), else the one star of the attempt's
inputs; the attempt's inputs without a star get its outputs' one star. ``candidates.n_segments``:
the number of segments of the stitched light curve the candidates were found in (null for one
file); a newer search of a stitched star replaces the older one's rows.

Revision ID: 0010_products_star_id
Revises: 0009_candidates
"""
from alembic import op
import sqlalchemy as sa

revision = "0010_products_star_id"
down_revision = "0009_candidates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("products") as batch_op:
        batch_op.add_column(sa.Column("star_id", sa.String(200), nullable=False, server_default=""))
        batch_op.create_index("ix_products_star_id", ["star_id"])
    with op.batch_alter_table("candidates") as batch_op:
        batch_op.add_column(sa.Column("n_segments", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("candidates") as batch_op:
        batch_op.drop_column("n_segments")
    with op.batch_alter_table("products") as batch_op:
        batch_op.drop_index("ix_products_star_id")
        batch_op.drop_column("star_id")
