"""Reproducible installs: every dependency of pyproject.toml (runtime and dev extras) is pinned
with its hashes in requirements.lock, the runtime ones in requirements-runtime.lock, each pin
satisfies what pyproject.toml asks, and `make install` and the image install from the locks
with hashes required."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _locked(name: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of every pin in a lock file."""
    pins: dict[str, tuple[str, int]] = {}
    current = None
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match[1])
            pins[current] = (match[2], 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
        elif not line.startswith(" "):
            current = None
    return pins


RUNTIME = [Requirement(r) for r in PROJECT["project"]["dependencies"]]
DEV = [Requirement(r) for r in PROJECT["project"]["optional-dependencies"]["dev"]]
BUILD = [Requirement(r) for r in PROJECT["build-system"]["requires"]]


@pytest.mark.parametrize(
    ("lock", "wanted"),
    [("requirements.lock", RUNTIME + DEV + BUILD), ("requirements-runtime.lock", RUNTIME + BUILD)],
)
def test_every_dependency_is_pinned_with_hashes_as_pyproject_asks(
    lock: str, wanted: list[Requirement]
) -> None:
    pins = _locked(lock)
    assert pins and all(hashes for _, hashes in pins.values()), [n for n, (_, h) in pins.items() if not h]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in {lock}: run make lock"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock} pins {requirement.name}=={version}, pyproject.toml asks {requirement.specifier}: run make lock"
        )


def test_the_runtime_lock_holds_no_dev_tool() -> None:
    dev_only = {canonicalize_name(r.name) for r in DEV} - {canonicalize_name(r.name) for r in RUNTIME}
    assert not dev_only & _locked("requirements-runtime.lock").keys()


def test_make_install_and_the_image_install_from_the_locks_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "pip install -q --require-hashes -r requirements.lock" in makefile
    assert "pip install -q --no-deps --no-build-isolation -e ." in makefile
    assert re.search(r"^lock:", makefile, re.MULTILINE)
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install --require-hashes -r requirements-runtime.lock" in dockerfile
    assert "pip install --no-deps --no-build-isolation ." in dockerfile
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not [p for p in ignored if Path("requirements-runtime.lock").match(p.lstrip("/"))]
