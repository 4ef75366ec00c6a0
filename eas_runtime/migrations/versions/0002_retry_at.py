"""tasks.retry_at: backoff before a retried task may be claimed again

Revision ID: 0002_retry_at
Revises: 0001_baseline
"""
from alembic import op
import sqlalchemy as sa

revision = "0002_retry_at"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_column("retry_at")
