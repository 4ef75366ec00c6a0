"""candidates: the catalogue of vetted transit candidates

One row per candidate of the newest successful ``vetting`` attempt of a task (period, epoch,
duration [d], depth [ppm], S/N, verdict and reasons, the whole vetted row in ``details``).

Revision ID: 0009_candidates
Revises: 0008_attempt_unanswered_sends
"""
from alembic import op
import sqlalchemy as sa

revision = "0009_candidates"
down_revision = "0008_attempt_unanswered_sends"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "candidates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempt_id", sa.Integer(), sa.ForeignKey("attempts.id", ondelete="SET NULL"), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("star_id", sa.String(200), nullable=False),
        sa.Column("star_name", sa.String(200), nullable=False),
        sa.Column("mission", sa.String(50), nullable=False),
        sa.Column("lightcurve_key", sa.String(1000), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("period", sa.Float(), nullable=True),
        sa.Column("epoch", sa.Float(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("depth", sa.Float(), nullable=True),
        sa.Column("snr", sa.Float(), nullable=True),
        sa.Column("transit_count", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(40), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("task_id", "number", name="uq_candidate_task_number"),
    )
    for column in ("task_id", "job_id", "star_id", "period", "snr", "verdict"):
        op.create_index(f"ix_candidates_{column}", "candidates", [column])


def downgrade() -> None:
    op.drop_table("candidates")
