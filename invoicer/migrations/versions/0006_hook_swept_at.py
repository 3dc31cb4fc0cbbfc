"""hook_deliveries.swept_at: the sweep backs off per hook, as for events and deliveries

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('hook_deliveries', sa.Column('swept_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('hook_deliveries', 'swept_at')
