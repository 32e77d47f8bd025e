"""Several server processes on one database: table ``change_counters`` (versions of the in-memory face
index) and column ``cameras.viewer_key_sealed`` (the cameras' viewer keys, encrypted). Downgrade drops
exactly these.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create this revision's table and column."""
    op.create_table('change_counters',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.execute("INSERT INTO change_counters (name, version) VALUES ('faces', 0)")
    with op.batch_alter_table('cameras') as batch:
        batch.add_column(sa.Column('viewer_key_sealed', sa.String(length=128), nullable=True))


def downgrade() -> None:
    """Drop this revision's column and table."""
    with op.batch_alter_table('cameras') as batch:
        batch.drop_column('viewer_key_sealed')
    op.drop_table('change_counters')
