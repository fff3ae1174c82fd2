"""safe_relpath and safe_join against the path-traversal families behind MLflow's CVEs."""

from __future__ import annotations

import ntpath
import os
import posixpath
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.artifacts import safe_join, safe_relpath
from mloop.errors import InvalidInputError, UnsafePathError


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("model.pkl", "model.pkl"),
        ("model/weights.bin", "model/weights.bin"),
        ("./model//weights.bin", "model/weights.bin"),
        ("model/./weights.bin/", "model/weights.bin"),
        ("plots/2024-06-01T10:00:00 auc.png", "plots/2024-06-01T10:00:00 auc.png"),
        ("données/模型.bin", "données/模型.bin"),
        ("e\u0301t\u00e9.txt", "\u00e9t\u00e9.txt"),  # NFC: one way to write é
        ("a/..b/c..d/.hidden", "a/..b/c..d/.hidden"),
        ("100% done.txt", "100% done.txt"),
        ("a~b/~c", "a~b/~c"),
        ("console.log", "console.log"),
        ("x" * 255, "x" * 255),
    ],
)
def test_safe_names_come_back_normalized(name: str, normal: str) -> None:
    assert safe_relpath(name) == normal


HOSTILE = {
    # CVE-2023-1177 / CVE-2024-1560 family: plain and nested parent segments
    "parent": ["..", "../etc/passwd", "a/../../b", "a/b/..", "./../x", "a/./../.."],
    # absolute paths, POSIX and Windows (CVE-2023-6909 family)
    "absolute": ["/etc/passwd", "//server/share", "C:\\Windows", "C:/Windows", "C:x", "c:"],
    "backslash": ["a\\b", "..\\..\\x", "\\\\server\\share\\x", "\\x"],
    "control": ["a\x00b", "model\n.bin", "tab\there", "a\x7fb", "a\x85b", "a\u202egnp.exe"],
    "url-escaped": ["%2e%2e/x", "%2E%2E%2Fx", "a%2fb", "..%2f..%2fx", "a%5cb", "%252e%252e/x"],
    "home": ["~", "~/.ssh/id_rsa", "~root/x", "./~/x"],
    "empty": ["", ".", "./", "/", "//", "./."],
    "windows-trailing": ["a./b", "a /b", "...", ".. ", "x/. ."],
    "windows-device": ["CON", "nul.txt", "a/aux", "Com1.log", "lpt9", "CONIN$"],
    "unicode look-alikes": ["\uff0e\uff0e/x", "a\uff0f..\uff0fb", "\uff23:x", "a\uff3cb"],
    "too long": ["x" * 1001, "a/" + "y" * 256, "a/" + "é" * 128],
    "surrogate": ["a\ud800b"],
}


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, id=f"{family}:{name[:30]!r}") for family, names in HOSTILE.items()
     for name in names],
)  # fmt: skip
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafePathError) as caught:
        safe_relpath(name)

    message = str(caught.value)
    assert repr(name)[:40] in message or "NFKC" in message
    assert "like 'model/weights.bin'" in message  # says what is allowed


@pytest.mark.parametrize("value", [None, 1, b"model.bin", Path("model.bin"), ["a"]])
def test_only_str_names_are_accepted(value: object) -> None:
    with pytest.raises(UnsafePathError, match="must be a str"):
        safe_relpath(value)


def test_an_unsafe_name_is_an_invalid_input() -> None:
    assert issubclass(UnsafePathError, InvalidInputError)
    assert issubclass(UnsafePathError, ValueError)


# Fragments that, combined, make most of the hostile families above.
_FRAGMENTS = st.sampled_from(
    ["..", ".", "/", "\\", "%2e", "%2f", "%25", "~", "C:", "a", " ", "\x00", "\uff0e", "\uff0f",
     "\uff3c", "CON", "é", "\u202e", ":", "x.txt"]
)  # fmt: skip
_NAMES = st.one_of(st.text(), st.lists(_FRAGMENTS, max_size=12).map("".join))


@settings(max_examples=400, database=None, deadline=None)
@given(_NAMES)
def test_any_accepted_name_stays_inside_any_root(name: str) -> None:
    try:
        normal = safe_relpath(name)
    except UnsafePathError:
        return
    posix = posixpath.normpath(posixpath.join("/srv/root", normal))
    windows = ntpath.normpath(ntpath.join("C:\\srv\\root", normal))
    assert posix.startswith("/srv/root/")
    assert windows.startswith("C:\\srv\\root\\")
    assert ".." not in normal.split("/")
    assert safe_relpath(normal) == normal


def test_safe_join_returns_the_resolved_path_inside(tmp_path: Path) -> None:
    root = tmp_path / "downloads"
    root.mkdir()

    assert safe_join(root, "./model/w.bin") == root.resolve() / "model" / "w.bin"
    assert safe_join(os.fspath(root), "a") == root.resolve() / "a"


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a\\..\\..\\x", "%2e%2e/x", ""])
def test_safe_join_refuses_hostile_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_join(tmp_path, name)


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="needs POSIX symlinks")
def test_safe_join_refuses_a_symlink_that_leads_out(tmp_path: Path) -> None:
    root = tmp_path / "downloads"
    (root / "inner").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (root / "to-root").symlink_to(root)
    (root / "ok").symlink_to(root / "inner")
    (root / "loop").symlink_to(root / "loop")

    with pytest.raises(UnsafePathError, match="outside"):
        safe_join(root, "escape/secret.txt")
    with pytest.raises(UnsafePathError):
        safe_join(root, "to-root")  # the root itself is not a file inside it
    with pytest.raises(UnsafePathError):
        safe_join(root, "loop/x")
    assert safe_join(root, "ok/file") == root.resolve() / "inner" / "file"
