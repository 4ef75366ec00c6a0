"""pinned input versions and the versions each attempt read

Two uploads to one key in quick succession made two jobs that both read the second upload: a
task read the key's latest content when it ran. ``task_inputs.version_id`` pins an input to
the product version that created the job (a watch rule's upload), and ``attempt_inputs``
records, for every attempt, the version (object version id and ETag) of each input it read.

Revision ID: 0006_pinned_inputs
Revises: 0005_products_directory_filename
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_pinned_inputs"
down_revision = "0005_products_directory_filename"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_inputs") as batch:
        batch.add_column(sa.Column("version_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_task_inputs_version_id", "product_versions", ["version_id"], ["id"],
                                 ondelete="SET NULL")
    op.create_table(
        "attempt_inputs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("attempt_id", sa.Integer(), sa.ForeignKey("attempts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("semantic_name", sa.String(100), nullable=False),
        sa.Column("key", sa.String(1000), nullable=False),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("product_versions.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("etag", sa.String(100), nullable=False),
        sa.Column("object_version", sa.String(200), nullable=True),
    )
    op.create_index("ix_attempt_inputs_attempt_id", "attempt_inputs", ["attempt_id"])


def downgrade() -> None:
    op.drop_index("ix_attempt_inputs_attempt_id", table_name="attempt_inputs")
    op.drop_table("attempt_inputs")
    with op.batch_alter_table("task_inputs") as batch:
        batch.drop_constraint("fk_task_inputs_version_id", type_="foreignkey")
        batch.drop_column("version_id")
