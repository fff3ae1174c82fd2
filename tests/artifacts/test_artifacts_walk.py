"""walk_files: what logging a file or a folder picks up, and the symlinks it refuses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mloop.artifacts import walk_files
from mloop.errors import InvalidInputError, NotFoundError, UnsafePathError

needs_symlinks = pytest.mark.skipif(os.name == "nt", reason="needs POSIX symlinks")


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    root = tmp_path / "outputs"
    (root / "model").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "metrics.json").write_text("{}")
    (root / "model" / "weights.bin").write_bytes(b"w")
    (root / "model" / "b.txt").write_text("b")
    return root


def test_a_folder_yields_every_file_sorted_by_relative_name(outputs: Path) -> None:
    assert list(walk_files(outputs)) == [
        ("metrics.json", outputs.resolve() / "metrics.json"),
        ("model/b.txt", outputs.resolve() / "model" / "b.txt"),
        ("model/weights.bin", outputs.resolve() / "model" / "weights.bin"),
    ]


def test_a_single_file_yields_its_base_name(outputs: Path) -> None:
    path = outputs / "model" / "weights.bin"

    assert list(walk_files(os.fspath(path))) == [("weights.bin", path.resolve())]


def test_an_empty_folder_yields_nothing(tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()

    assert list(walk_files(tmp_path / "nothing")) == []


def test_a_missing_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        list(walk_files(tmp_path / "missing"))


def test_a_file_with_an_unsafe_name_is_refused(outputs: Path) -> None:
    (outputs / "model" / "back\\slash.txt").write_text("x")

    with pytest.raises(UnsafePathError, match="back"):
        list(walk_files(outputs))


@needs_symlinks
def test_a_symlink_leading_out_of_the_folder_is_refused(outputs: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    (outputs / "model" / "innocent.txt").symlink_to(secret)

    with pytest.raises(UnsafePathError, match=r"model/innocent\.txt.*outside"):
        list(walk_files(outputs))


@needs_symlinks
def test_a_symlinked_folder_leading_out_is_refused(outputs: Path, tmp_path: Path) -> None:
    (outputs / "home").symlink_to(tmp_path)

    with pytest.raises(UnsafePathError, match="'home'"):
        list(walk_files(outputs))


@needs_symlinks
def test_symlinks_inside_the_folder_are_followed(outputs: Path) -> None:
    (outputs / "latest.bin").symlink_to(outputs / "model" / "weights.bin")
    (outputs / "again").symlink_to(outputs / "model")

    found = dict(walk_files(outputs))

    real = outputs.resolve() / "model"
    assert found["latest.bin"] == real / "weights.bin"
    assert found["again/weights.bin"] == real / "weights.bin"
    assert found["again/b.txt"] == real / "b.txt"


@needs_symlinks
def test_a_symlink_loop_is_refused(outputs: Path) -> None:
    (outputs / "model" / "up").symlink_to(outputs)

    with pytest.raises(UnsafePathError, match="loop"):
        list(walk_files(outputs))


@needs_symlinks
def test_a_dangling_symlink_is_not_found(outputs: Path) -> None:
    (outputs / "gone.bin").symlink_to(outputs / "deleted.bin")

    with pytest.raises(NotFoundError, match=r"gone\.bin"):
        list(walk_files(outputs))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused(outputs: Path) -> None:
    os.mkfifo(outputs / "pipe")

    with pytest.raises(InvalidInputError, match="not a regular file"):
        list(walk_files(outputs))
