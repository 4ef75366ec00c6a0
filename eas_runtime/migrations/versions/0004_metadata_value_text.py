"""metadata_items.value as JSON text: SQLite's numeric affinity turned 50.0 into 50

Revision ID: 0004_metadata_value_text
Revises: 0003_diagnostics_indexes
"""
from alembic import op
import sqlalchemy as sa

revision = "0004_metadata_value_text"
down_revision = "0003_diagnostics_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE metadata_items ALTER COLUMN value TYPE TEXT USING value::text")
    else:
        with op.batch_alter_table("metadata_items") as batch_op:
            batch_op.alter_column("value", type_=sa.Text(), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE metadata_items ALTER COLUMN value TYPE JSON USING value::json")
    else:
        with op.batch_alter_table("metadata_items") as batch_op:
            batch_op.alter_column("value", type_=sa.JSON(), existing_nullable=True)
