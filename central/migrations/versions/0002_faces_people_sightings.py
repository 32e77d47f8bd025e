"""Faces, people and sightings: ingested items, face observations, photos, people, their enrolled
encodings, unknown-face groups and sightings. Downgrade drops exactly these tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create this revision's tables and indexes."""
    op.create_table('people',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('unknown_groups',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('face_observations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('camera_id', sa.String(length=32), nullable=False),
    sa.Column('item_id', sa.String(length=32), nullable=False),
    sa.Column('track_id', sa.String(length=64), nullable=True),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('box', sa.JSON(), nullable=False),
    sa.Column('encoding', sa.LargeBinary(), nullable=True),
    sa.Column('crop_path', sa.String(length=255), nullable=True),
    sa.Column('person_id', sa.String(length=32), nullable=True),
    sa.Column('unknown_group_id', sa.String(length=32), nullable=True),
    sa.Column('distance', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unknown_group_id'], ['unknown_groups.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('face_observations', schema=None) as batch_op:
        batch_op.create_index('ix_face_observations_camera_item', ['camera_id', 'item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_face_observations_captured_at'), ['captured_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_face_observations_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_face_observations_unknown_group_id'), ['unknown_group_id'], unique=False)

    op.create_table('ingested_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('camera_id', sa.String(length=32), nullable=False),
    sa.Column('item_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('track_id', sa.String(length=64), nullable=True),
    sa.Column('event', sa.String(length=16), nullable=True),
    sa.Column('profiles', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('camera_id', 'item_id', name='uq_ingested_items_camera_item')
    )
    op.create_table('photos',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('camera_id', sa.String(length=32), nullable=False),
    sa.Column('item_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('camera_id', 'item_id', 'kind', name='uq_photos_camera_item_kind')
    )
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_photos_captured_at'), ['captured_at'], unique=False)

    op.create_table('sightings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('camera_id', sa.String(length=32), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detections', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sightings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sightings_ended_at'), ['ended_at'], unique=False)
        batch_op.create_index('ix_sightings_person_camera_ended', ['person_id', 'camera_id', 'ended_at'], unique=False)

    op.create_table('person_encodings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('encoding', sa.LargeBinary(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_path', sa.String(length=255), nullable=True),
    sa.Column('observation_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['observation_id'], ['face_observations.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('person_encodings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_encodings_person_id'), ['person_id'], unique=False)



def downgrade() -> None:
    """Drop what :func:`upgrade` created, in reverse order."""
    with op.batch_alter_table('person_encodings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_encodings_person_id'))

    op.drop_table('person_encodings')
    with op.batch_alter_table('sightings', schema=None) as batch_op:
        batch_op.drop_index('ix_sightings_person_camera_ended')
        batch_op.drop_index(batch_op.f('ix_sightings_ended_at'))

    op.drop_table('sightings')
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_photos_captured_at'))

    op.drop_table('photos')
    op.drop_table('ingested_items')
    with op.batch_alter_table('face_observations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_face_observations_unknown_group_id'))
        batch_op.drop_index(batch_op.f('ix_face_observations_person_id'))
        batch_op.drop_index(batch_op.f('ix_face_observations_captured_at'))
        batch_op.drop_index('ix_face_observations_camera_item')

    op.drop_table('face_observations')
    op.drop_table('unknown_groups')
    op.drop_table('people')
