"""Choosing an executor from settings, and what a task may ask for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mloop.compute import (
    InProcessExecutor,
    ProcessPoolExecutor,
    Resources,
    get_executor,
    parse_memory,
)
from mloop.config import load_settings
from mloop.errors import ConfigError, InvalidValueError

UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "KB": 1000, "MB": 1000**2}


def test_the_default_is_the_process_pool() -> None:
    with get_executor() as executor:
        assert isinstance(executor, ProcessPoolExecutor)


def test_the_backend_comes_from_mloop_yaml(isolated_settings: Path) -> None:
    (isolated_settings / "mloop.yaml").write_text("compute:\n  backend: inprocess\n")
    assert isinstance(get_executor(), InProcessExecutor)


def test_the_backend_and_workers_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOOP_COMPUTE", '{"backend": "process", "max_workers": 3}')
    with get_executor() as executor:
        assert (executor.name, executor.max_workers) == ("process", 3)


def test_an_argument_beats_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOOP_COMPUTE", '{"backend": "process"}')
    assert get_executor("inprocess").name == "inprocess"
    with get_executor(max_workers=1) as executor:
        assert executor.max_workers == 1


def test_settings_can_be_passed_in(isolated_settings: Path) -> None:
    settings = load_settings(environ={"MLOOP_COMPUTE": '{"backend": "inprocess"}'})
    assert get_executor(settings=settings).name == "inprocess"


def test_an_unknown_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidValueError, match="unknown compute backend 'spark'"):
        get_executor("spark")
    monkeypatch.setenv("MLOOP_COMPUTE", '{"backend": "spark"}')
    with pytest.raises(ConfigError, match="compute"):
        get_executor()


def test_an_address_is_for_ray_only() -> None:
    with pytest.raises(InvalidValueError, match="ray backend only"):
        get_executor("process", address="ray://head:10001")


def test_importing_compute_loads_neither_ray_nor_optuna() -> None:
    code = (
        "import sys, mloop.compute; "
        "print(','.join(m for m in ('ray', 'optuna', 'pandas', 'sqlalchemy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


# -- Resources ------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=2**53), st.sampled_from(sorted(UNITS)))
def test_memory_sizes_parse_to_bytes(amount: int, unit: str) -> None:
    if amount * UNITS[unit] > 2**53:
        with pytest.raises(InvalidValueError, match="more than 8 PiB"):
            parse_memory(f"{amount}{unit}")
        return
    assert parse_memory(f"{amount}{unit}") == amount * UNITS[unit]
    assert parse_memory(f" {amount} {unit} ") == amount * UNITS[unit]
    assert Resources(memory=f"{amount}{unit}").memory == amount * UNITS[unit]


@given(
    st.floats(min_value=0, max_value=512, allow_nan=False),
    st.floats(min_value=0, max_value=16, allow_nan=False),
    st.one_of(st.none(), st.integers(min_value=1, max_value=2**53)),
)
def test_every_spelling_of_resources_agrees(cpu: float, gpu: float, memory: int | None) -> None:
    made = Resources(cpu=cpu, gpu=gpu, memory=memory)
    as_dict: dict[str, Any] = {"cpu": cpu, "gpu": gpu, "memory": memory}
    text = f"cpu={cpu!r},gpu={gpu!r}" + ("" if memory is None else f",memory={memory}")
    assert Resources.parse(as_dict) == made
    assert Resources.parse(text) == made
    assert Resources.parse(made) is made


@given(st.text(max_size=30))
def test_any_text_is_a_size_or_a_clear_error(text: str) -> None:
    outcome: int | str
    try:
        outcome = parse_memory(text)
    except InvalidValueError as error:
        outcome = str(error)
    if isinstance(outcome, str):
        assert "memory" in outcome
    else:
        assert outcome > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cpu": -1}, "cpu must be a finite number >= 0"),
        ({"cpu": float("inf")}, "cpu must be a finite"),
        ({"gpu": float("nan")}, "gpu must be a finite"),
        ({"cpu": "2"}, "cpu must be a number"),
        ({"gpu": True}, "gpu must be a number"),
        ({"memory": 0}, "more than 0 bytes"),
        ({"memory": "lots"}, "'lots' is not a size"),
        ({"memory": 1.5}, "number of bytes or a size"),
    ],
)
def test_bad_resources_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        Resources(**kwargs)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cpu", "not key=value"),
        ("cpu=two", "not a number"),
        ("cores=2", "unknown resources 'cores'"),
        ({"vram": 1}, "unknown resources 'vram'"),
        (42, "not int"),
    ],
)
def test_bad_resource_specs_are_refused(spec: Any, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        Resources.parse(spec)


def test_defaults_and_none() -> None:
    assert Resources.parse(None) == Resources() == Resources(cpu=1, gpu=0, memory=None)
