"""pipeline step cache, schedule slots and trigger cursors

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 07:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "step_cache",
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("pipeline", sa.String(length=256), nullable=False),
        sa.Column("step", sa.String(length=256), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_step_cache_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cache_key", name=op.f("pk_step_cache")),
    )
    with op.batch_alter_table("step_cache", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_step_cache_run_id"), ["run_id"], unique=False)

    op.create_table(
        "schedule_slots",
        sa.Column("schedule", sa.String(length=256), nullable=False),
        sa.Column("slot_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("claimed_by", sa.String(length=256), nullable=False),
        sa.Column("claimed_ms", sa.BigInteger(), nullable=False),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('claimed', 'finished', 'failed', 'skipped')",
            name=op.f("ck_schedule_slots_status"),
        ),
        sa.PrimaryKeyConstraint("schedule", "slot_ms", name=op.f("pk_schedule_slots")),
    )

    op.create_table(
        "trigger_cursors",
        sa.Column("trigger", sa.String(length=256), nullable=False),
        sa.Column("position", sa.String(length=256), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("trigger", name=op.f("pk_trigger_cursors")),
    )


def downgrade() -> None:
    op.drop_table("trigger_cursors")
    op.drop_table("schedule_slots")
    with op.batch_alter_table("step_cache", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_step_cache_run_id"))

    op.drop_table("step_cache")
