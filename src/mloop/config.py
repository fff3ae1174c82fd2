"""Settings: declared once here, read from ``mloop.yaml`` and ``MLOOP_*`` environment variables.

Precedence, lowest first: the defaults below, the nearest ``mloop.yaml`` found from the current
folder upwards (its folder is the *project folder*), then ``MLOOP_<FIELD>`` variables. Every
field is documented in docs/configuration.md; a test fails when one is not.

    >>> from mloop.config import load_settings
    >>> settings = load_settings()
    >>> settings.tracking_uri          # doctest: +SKIP
    'sqlite:////home/me/churn/.mloop/mloop.db'
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mloop.errors import ConfigError

__all__ = ["PROJECT_FILE", "Settings", "find_project_dir", "load_settings"]

PROJECT_FILE = "mloop.yaml"
ENV_PREFIX = "MLOOP_"


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


class ComputeSettings(BaseModel):
    """Where pipeline steps and trials run (``compute:`` in mloop.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["inprocess", "process", "ray"] = Field(
        default="process",
        description="inprocess (debugging), process (a local process pool) or ray.",
    )
    address: str = Field(
        default="",
        description="Ray only: the cluster to join (ray://host:10001 or auto); "
        "empty starts a local Ray.",
    )
    max_workers: int | None = Field(
        default=None, ge=1, description="Parallel workers of the process pool (default: CPUs)."
    )


class Settings(BaseModel):
    """Every setting mloop reads. Field names are the mloop.yaml keys; MLOOP_<NAME> overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path = Field(
        default_factory=Path.cwd,
        description="Project folder; defaults to the folder of the nearest mloop.yaml, "
        "else the current folder. Relative defaults below live in its .mloop/ folder.",
    )
    tracking_uri: str = Field(
        default="",
        description="Metadata store: sqlite:///path.db or postgresql://user@host/db. "
        "Default: sqlite:///<home>/.mloop/mloop.db.",
    )
    artifact_uri: str = Field(
        default="",
        description="Artifact store: a folder or any fsspec URL (s3://bucket/prefix). "
        "Default: <home>/.mloop/artifacts.",
    )
    experiment: str = Field(
        default="Default", description="Experiment that runs go to when none is named."
    )
    user: str = Field(
        default_factory=_default_user, description="Who runs are recorded as started by."
    )
    flush_interval: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="Seconds the background writer waits before writing buffered metrics.",
    )
    capture_packages: bool = Field(
        default=True,
        description="Record installed package versions with every run (once per process).",
    )
    sqlite_busy_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a SQLite writer waits for another process's lock before failing.",
    )

    allow_pickle_models: bool = Field(
        default=False,
        description="Load model packages saved with joblib/pickle (which can run code when "
        "loaded). Off: such packages are refused unless load_model(allow_pickle=True).",
    )
    trusted_types: tuple[str, ...] = Field(
        default=(),
        description="Extra fully qualified type names a scikit-learn (skops) model package may "
        "contain, beyond skops' safe defaults; a comma-separated list in MLOOP_TRUSTED_TYPES.",
    )
    model_cache: str = Field(
        default="",
        description="Folder of unzipped model packages, one per package digest. "
        "Default: <home>/.mloop/cache/models.",
    )

    online_store: str = Field(
        default="",
        description="Online feature store: sqlite:///path.db or redis://host:6379/0. "
        "Default: sqlite:///<home>/.mloop/online.db.",
    )

    compute: ComputeSettings = Field(
        default_factory=ComputeSettings,
        description="Where pipeline steps and trials run: a mapping with backend "
        "(inprocess | process | ray), address and max_workers. As an environment variable: "
        'JSON, e.g. MLOOP_COMPUTE=\'{"backend": "ray"}\'.',
    )
    prediction_log: str = Field(
        default="",
        description="Folder of the prediction log that model servers write and monitoring "
        "reads. Default: <home>/.mloop/predictions.",
    )

    @field_validator("compute", mode="before")
    @classmethod
    def _parse_compute(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"compute must be a JSON object: {exc}") from None
        return value

    def resolved_prediction_log(self) -> Path:
        """The prediction log folder, with the default filled in from the project folder."""
        if self.prediction_log:
            return Path(self.prediction_log).expanduser()
        return self.home / ".mloop" / "predictions"

    @field_validator("trusted_types", mode="before")
    @classmethod
    def _split_types(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    def resolved_model_cache(self) -> Path:
        """The model package cache folder, with the default filled in from the project folder."""
        if self.model_cache:
            return Path(self.model_cache).expanduser()
        return self.home / ".mloop" / "cache" / "models"

    def resolved_online_store(self) -> str:
        """The online store URI, with the default filled in from the project folder."""
        if self.online_store:
            return self.online_store
        return f"sqlite:///{(self.home / '.mloop' / 'online.db').as_posix()}"

    def resolved_tracking_uri(self) -> str:
        """The tracking URI, with the default filled in from the project folder."""
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.home / '.mloop' / 'mloop.db').as_posix()}"

    def resolved_artifact_uri(self) -> str:
        """The artifact URI, with the default filled in from the project folder."""
        if self.artifact_uri:
            return self.artifact_uri
        return str(self.home / ".mloop" / "artifacts")


def find_project_dir(start: Path | None = None) -> Path | None:
    """The nearest folder from ``start`` upwards that holds an mloop.yaml, or None."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    return None


def _read_project_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not {type(data).__name__}")
    return data


def load_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read the settings in force for ``cwd`` (default: the current folder)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    project = find_project_dir(cwd)
    if project is not None:
        for key, value in _read_project_file(project / PROJECT_FILE).items():
            values[str(key)] = value
            sources[str(key)] = str(project / PROJECT_FILE)
        values.setdefault("home", project)
    elif cwd is not None:
        values["home"] = cwd
    for name in Settings.model_fields:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = environ[env_name]
            sources[name] = env_name
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        where = ", ".join(f"{key!r} (from {sources.get(key, '?')})" for key in unknown)
        known = ", ".join(Settings.model_fields)
        raise ConfigError(f"unknown setting {where}; known settings: {known}")
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{err['loc'][0]} (from {sources.get(str(err['loc'][0]), 'default')}): {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
    home = settings.home if settings.home.is_absolute() else (cwd or Path.cwd()) / settings.home
    return settings.model_copy(update={"home": home.resolve()})
