"""hook_deliveries: dispatch systems' own webhooks (Jobber, ServiceTitan, FieldEdge), raw and deduplicated

Revision ID: 0004_inbound_hooks
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_inbound_hooks'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hook_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('delivery_key', sa.String(length=256), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('item_id', sa.String(length=128), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('event_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['event_pk'], ['events.id'], name=op.f('fk_hook_deliveries_event_pk')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hook_deliveries')),
    sa.UniqueConstraint('tenant', 'source', 'delivery_key', name='uq_hook_deliveries_identity')
    )
    op.create_index('ix_hook_deliveries_status_received', 'hook_deliveries', ['status', 'received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_hook_deliveries_status_received', table_name='hook_deliveries')
    op.drop_table('hook_deliveries')
