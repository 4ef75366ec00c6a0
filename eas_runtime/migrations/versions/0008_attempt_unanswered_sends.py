"""attempts.unanswered_sends: task.ready sends that no function of the task's type answered

The reconcile tick resends the ``task.ready`` of an attempt that has not started. It counts the
sends after which no attempt at all started or heartbeat (the function took nothing: not
deployed, failing to start, refusing every request; and nothing else ran), and gives the attempt
up as an infrastructure failure at ``max_unanswered_sends``.

Revision ID: 0008_attempt_unanswered_sends
Revises: 0007_job_rejection
"""
from alembic import op
import sqlalchemy as sa

revision = "0008_attempt_unanswered_sends"
down_revision = "0007_job_rejection"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch_op:
        batch_op.add_column(sa.Column("unanswered_sends", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch_op:
        batch_op.drop_column("unanswered_sends")
