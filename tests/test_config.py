"""Settings: precedence, validation, and that every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mloop.config import Settings, find_project_dir, load_settings
from mloop.errors import ConfigError

DOCS = Path(__file__).parents[1] / "docs" / "configuration.md"


def test_defaults_live_in_the_project_folder(tmp_path: Path) -> None:
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.home == tmp_path.resolve()
    assert settings.resolved_tracking_uri() == f"sqlite:///{tmp_path.resolve()}/.mloop/mloop.db"
    assert settings.resolved_artifact_uri() == str(tmp_path.resolve() / ".mloop" / "artifacts")


def test_project_file_is_found_upwards_and_env_wins(tmp_path: Path) -> None:
    (tmp_path / "mloop.yaml").write_text("experiment: churn\nflush_interval: 2\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_dir(deep) == tmp_path.resolve()
    settings = load_settings(environ={"MLOOP_FLUSH_INTERVAL": "0.1"}, cwd=deep)
    assert settings.home == tmp_path.resolve()
    assert settings.experiment == "churn"
    assert settings.flush_interval == 0.1


def test_unknown_setting_names_its_source(tmp_path: Path) -> None:
    (tmp_path / "mloop.yaml").write_text("experimnet: typo\n")
    with pytest.raises(ConfigError, match=r"'experimnet' \(from .*mloop.yaml\).*known settings"):
        load_settings(environ={}, cwd=tmp_path)


def test_bad_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"flush_interval.*MLOOP_FLUSH_INTERVAL"):
        load_settings(environ={"MLOOP_FLUSH_INTERVAL": "soon"}, cwd=tmp_path)


@pytest.mark.parametrize("content", ["- a list\n", "key: [unclosed\n"])
def test_malformed_project_file(tmp_path: Path, content: str) -> None:
    (tmp_path / "mloop.yaml").write_text(content)
    with pytest.raises(ConfigError, match=r"mloop\.yaml"):
        load_settings(environ={}, cwd=tmp_path)


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    for name, field in Settings.model_fields.items():
        assert re.search(rf"`{name}`", text), f"docs/configuration.md does not document {name}"
        assert f"MLOOP_{name.upper()}" in text, f"docs/configuration.md lacks MLOOP_{name.upper()}"
        assert field.description, f"Settings.{name} has no description"
