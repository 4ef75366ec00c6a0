"""jobs.rejection: why a job was refused at submission (NULL when accepted)

A job that arrives as an event and is refused (a task type no function serves, outputs that
another job plans) is kept as a job row without tasks, so that ``eas jobs`` and ``/jobs`` show
it with the reason and a duplicate delivery of the event finds it.

Revision ID: 0007_job_rejection
Revises: 0006_pinned_inputs
"""
from alembic import op
import sqlalchemy as sa

revision = "0007_job_rejection"
down_revision = "0006_pinned_inputs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("rejection", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("rejection")
