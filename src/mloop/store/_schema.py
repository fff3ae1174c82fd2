"""The metadata schema as SQLAlchemy Core tables: what every component records.

Times are integer milliseconds since the Unix epoch (UTC), the same on SQLite and PostgreSQL.
IDs are time-ordered UUIDv7 strings, so sorting by id sorts by creation time. The tables
that searches join by primary key are ``WITHOUT ROWID`` on SQLite (clustered on the key: one
B-tree lookup instead of two); PostgreSQL ignores the option. Alembic
migrations in ``migrations/versions`` create and evolve exactly these tables.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = sa.String(36)
KEY = sa.String(250)
# SQLite only makes INTEGER PRIMARY KEY an alias of the fast rowid; BIGINT elsewhere.
ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("deleted_ms", sa.BigInteger),
)

environments = sa.Table(
    "environments",
    metadata,
    # sha256 of the canonical JSON of the other columns: one row per distinct environment.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("python", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(256), nullable=False),
    sa.Column("packages", sa.JSON, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("experiment_id", ID, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_ms", sa.BigInteger, nullable=False),
    sa.Column("end_ms", sa.BigInteger),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("parent_run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE")),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("git_dirty", sa.Boolean),
    sa.Column("git_branch", sa.String(256)),
    sa.Column("git_remote", sa.Text),
    sa.Column("command", sa.Text),
    sa.Column("environment_id", sa.String(64), sa.ForeignKey("environments.id")),
    sa.Column("error", sa.Text),
    sa.Column("deleted_ms", sa.BigInteger),
    sa.Index(None, "experiment_id", "start_ms"),
    sa.Index(None, "parent_run_id"),
    sa.Index(None, "deleted_ms"),
    sqlite_with_rowid=False,
)

params = sa.Table(
    "params",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sqlite_with_rowid=False,
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sqlite_with_rowid=False,
)

# No foreign key on metrics.run_id: checking it costs a lookup per row on the hottest write
# path, and every batch already checks its runs are running. Purging a run deletes its rows.
metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", ROWID, primary_key=True, autoincrement=True),
    sa.Column("run_id", ID, nullable=False),
    sa.Column("key", KEY, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Float(precision=53), nullable=False),
    sa.Index(None, "run_id", "key", "step"),
)

# The last value of each metric of each run (highest step, then latest time): what search
# filters and sorts on, kept up to date by every metric batch.
latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Float(precision=53), nullable=False),
    sa.Index(None, "key", "value"),
    sqlite_with_rowid=False,
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("digest", "kind"),
)

lineage = sa.Table(
    "lineage",
    metadata,
    sa.Column("id", ROWID, primary_key=True, autoincrement=True),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("artifact_id", ID, sa.ForeignKey("artifacts.id"), nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("name", sa.String(1000), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("run_id", "direction", "name"),
    sa.Index(None, "artifact_id"),
    sa.CheckConstraint("direction IN ('input', 'output')", name="direction"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("time_ms", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(32), nullable=False),
    sa.Column("object_id", sa.String(256), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Index(None, "object_type", "object_id"),
)

# -- model registry ---------------------------------------------------------------------------

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    # Versions are numbered 1, 2, 3 ... per model; the counter lives here so that allocating a
    # number is one locked row update, not a MAX() race.
    sa.Column("last_version", sa.Integer, nullable=False),
)

model_tags = sa.Table(
    "model_tags",
    metadata,
    sa.Column(
        "model_id", ID, sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "model_id", ID, sa.ForeignKey("registered_models.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("version", sa.Integer, nullable=False),
    # The model package (a content-addressed zip); RESTRICT keeps gc from dropping it.
    sa.Column("artifact_id", ID, sa.ForeignKey("artifacts.id"), nullable=False),
    # The run that produced it, if any; runs can be purged, so this is no foreign key.
    sa.Column("run_id", ID),
    sa.Column("flavor", sa.String(32), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.UniqueConstraint("model_id", "version"),
    sa.Index(None, "run_id"),
    sa.Index(None, "artifact_id"),
)

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column(
        "version_id", ID, sa.ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column(
        "model_id", ID, sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version_id", ID, sa.ForeignKey("model_versions.id"), nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False),
)

# -- events and webhooks ----------------------------------------------------------------------

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", ID, primary_key=True),  # UUIDv7: ordered by time
    sa.Column("kind", sa.String(64), nullable=False),  # e.g. model_version.created
    sa.Column("subject", sa.String(512), nullable=False),  # e.g. churn/3, churn@production
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Index(None, "kind", "created_ms"),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("events", sa.JSON, nullable=False),  # list of kind patterns: "model_version.*"
    sa.Column("secret", sa.Text),  # signs deliveries (HMAC-SHA256) when set
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("event_id", ID, sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("webhook_id", ID, sa.ForeignKey("webhooks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_ms", sa.BigInteger, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("delivered_ms", sa.BigInteger),
    sa.Index(None, "status", "next_attempt_ms"),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
)

# -- feature store ----------------------------------------------------------------------------

feature_definitions = sa.Table(
    "feature_definitions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),  # entity | feature_view | on_demand_...
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # The spec's canonical sha256; the same spec is also an artifact (kind = this kind) so
    # that lineage edges can point at a definition version.
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("artifact_id", ID, sa.ForeignKey("artifacts.id"), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.UniqueConstraint("kind", "name", "version"),
)

materializations = sa.Table(
    "materializations",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("view", sa.String(64), nullable=False),
    sa.Column("view_version", sa.Integer, nullable=False),
    sa.Column("online_store", sa.String(1000), nullable=False),  # URI, password hidden
    sa.Column("start_ms", sa.BigInteger),  # event-time window materialized, [start, end]
    sa.Column("end_ms", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running | finished | failed
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("stats", sa.JSON, nullable=False),  # per-feature statistics
    sa.Column("validation", sa.JSON, nullable=False),  # the validation report
    sa.Column("error", sa.Text),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("finished_ms", sa.BigInteger),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Index(None, "view", "online_store", "status", "end_ms"),
    sa.CheckConstraint("status IN ('running', 'finished', 'failed')", name="status"),
)

# -- pipelines and schedules ------------------------------------------------------------------

step_cache = sa.Table(
    "step_cache",
    metadata,
    # sha256 of (step source digest, parameters, input artifact digests): a hit skips the step.
    sa.Column("cache_key", sa.String(64), primary_key=True),
    sa.Column("pipeline", sa.String(256), nullable=False),
    sa.Column("step", sa.String(256), nullable=False),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("outputs", sa.JSON, nullable=False),  # how to load the step's outputs again
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Index(None, "run_id"),
)

schedule_slots = sa.Table(
    "schedule_slots",
    metadata,
    # One row per (schedule, cron slot) a scheduler claimed: the primary key is what keeps two
    # schedulers, or one restarted, from running a slot twice.
    sa.Column("schedule", sa.String(256), primary_key=True),
    sa.Column("slot_ms", sa.BigInteger, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # claimed | finished | failed | skipped
    sa.Column("run_id", ID),  # the pipeline run, once started (no FK: runs can be purged)
    sa.Column("claimed_by", sa.String(256), nullable=False),
    sa.Column("claimed_ms", sa.BigInteger, nullable=False),
    sa.Column("lease_until_ms", sa.BigInteger, nullable=False),
    sa.Column("finished_ms", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.CheckConstraint("status IN ('claimed', 'finished', 'failed', 'skipped')", name="status"),
)

trigger_cursors = sa.Table(
    "trigger_cursors",
    metadata,
    # How far an event trigger has read: the last event id it handled, or a source fingerprint.
    sa.Column("trigger", sa.String(256), primary_key=True),
    sa.Column("position", sa.String(256), nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)
