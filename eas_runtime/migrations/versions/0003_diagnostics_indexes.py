"""indexes for the diagnostics queries: tasks by (job, type), log lines by (severity, time)

Timings and pass/fail tables and the (job, task type) list read tasks by job and type; the log
view filters by severity and orders by time.

Revision ID: 0003_diagnostics_indexes
Revises: 0002_retry_at
"""
from alembic import op

revision = "0003_diagnostics_indexes"
down_revision = "0002_retry_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tasks_job_type", "tasks", ["job_id", "task_type"], unique=False)
    op.create_index("ix_log_messages_severity_time", "log_messages", ["severity", "time"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_log_messages_severity_time", table_name="log_messages")
    op.drop_index("ix_tasks_job_type", table_name="tasks")
