"""feature store definitions and materializations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 04:05:21.996361
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "materializations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("view", sa.String(length=64), nullable=False),
        sa.Column("view_version", sa.Integer(), nullable=False),
        sa.Column("online_store", sa.String(length=1000), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=True),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("validation", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'failed')", name=op.f("ck_materializations_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_materializations")),
    )
    with op.batch_alter_table("materializations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_materializations_view_online_store_status_end_ms"),
            ["view", "online_store", "status", "end_ms"],
            unique=False,
        )

    op.create_table(
        "feature_definitions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("artifact_id", sa.String(length=36), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifacts.id"],
            name=op.f("fk_feature_definitions_artifact_id_artifacts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_definitions")),
        sa.UniqueConstraint(
            "kind", "name", "version", name=op.f("uq_feature_definitions_kind_name_version")
        ),
    )


def downgrade() -> None:
    op.drop_table("feature_definitions")
    with op.batch_alter_table("materializations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_materializations_view_online_store_status_end_ms"))

    op.drop_table("materializations")
