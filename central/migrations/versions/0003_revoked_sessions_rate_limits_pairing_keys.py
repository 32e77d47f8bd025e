"""Logged-out sessions, shared rate-limit counters and pairing keys: tables ``revoked_sessions`` and
``rate_limit_counters``, columns ``pairing_requests.pairing_key_hash`` and ``cameras.pairing_key_hash``.
Downgrade drops exactly these.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create this revision's tables and columns."""
    op.create_table('revoked_sessions',
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('jti')
    )
    op.create_index('ix_revoked_sessions_expires_at', 'revoked_sessions', ['expires_at'], unique=False)
    op.create_table('rate_limit_counters',
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('window_start', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('rule', 'key', 'window_start')
    )
    op.create_index('ix_rate_limit_counters_window_start', 'rate_limit_counters', ['window_start'], unique=False)
    with op.batch_alter_table('pairing_requests') as batch:
        batch.add_column(sa.Column('pairing_key_hash', sa.String(length=64), nullable=True))
    with op.batch_alter_table('cameras') as batch:
        batch.add_column(sa.Column('pairing_key_hash', sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop this revision's columns and tables."""
    with op.batch_alter_table('cameras') as batch:
        batch.drop_column('pairing_key_hash')
    with op.batch_alter_table('pairing_requests') as batch:
        batch.drop_column('pairing_key_hash')
    op.drop_index('ix_rate_limit_counters_window_start', table_name='rate_limit_counters')
    op.drop_table('rate_limit_counters')
    op.drop_index('ix_revoked_sessions_expires_at', table_name='revoked_sessions')
    op.drop_table('revoked_sessions')
