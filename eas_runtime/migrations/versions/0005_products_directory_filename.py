"""index on products (directory, filename): a directory's files in name order, page by page

The index site lists the files directly in a directory sorted by name, 100 per page; with only
the index on ``directory``, every page sorted all of the directory's rows first (50,000 uploads
in ``inbox/``: the whole folder per page). With this index the page is an index walk.

Revision ID: 0005_products_directory_filename
Revises: 0004_metadata_value_text
"""
from alembic import op

revision = "0005_products_directory_filename"
down_revision = "0004_metadata_value_text"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_products_directory_filename", "products", ["directory", "filename"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_products_directory_filename", table_name="products")
