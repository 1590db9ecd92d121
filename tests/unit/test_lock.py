"""requirements/lock.txt is in step with pyproject.toml: every dependency named there is pinned, hashed.

scripts/venv.sh installs the lock with ``--require-hashes`` and then the project without its dependencies,
so a dependency added to pyproject.toml and not locked (``make lock``) would be missing from every
environment, and a pin outside its range would be one pyproject.toml refuses.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "lock.txt"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)(?P<hashes>(?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)",
                 re.MULTILINE)


def _named() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(line) for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]


def _pins() -> dict[str, tuple[str, int]]:
    text = LOCK.read_text(encoding="utf-8")
    return {canonicalize_name(m["name"]): (m["version"], m["hashes"].count("--hash=")) for m in PIN.finditer(text)}


def test_every_line_of_the_lock_is_a_hashed_pin_or_a_comment():
    pins = _pins()
    assert pins and all(hashes >= 1 for _, hashes in pins.values()), [n for n, (_, h) in pins.items() if not h]
    starts = [line.split("==")[0] for line in LOCK.read_text(encoding="utf-8").splitlines()
              if line and not line.startswith((" ", "#"))]
    assert len(starts) == len(pins), "a line that is neither a pin with its hashes nor a comment"
    assert "file://" not in LOCK.read_text(encoding="utf-8")  # no index or wheel folder of one machine


@pytest.mark.parametrize("requirement", _named(), ids=lambda r: r.name)
def test_every_dependency_of_pyproject_is_pinned_with_hashes_in_its_range(requirement):
    pins = _pins()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{requirement.name} is not in requirements/lock.txt: run make lock"
    version, hashes = pins[name]
    assert hashes >= 1
    assert requirement.specifier.contains(version, prereleases=True), (
        f"{requirement.name}=={version} is outside {requirement.specifier}: run make lock")


@pytest.mark.parametrize("requirement", [r for r in _named() if r.extras], ids=lambda r: r.name)
def test_what_an_extra_brings_is_pinned_too(requirement):
    """``uvicorn[standard]``, ``psycopg[binary,pool]``: the lock strips the extras, so it must name their packages."""
    pins = _pins()
    brought = [Requirement(line) for line in metadata.requires(requirement.name) or []]
    wanted = {canonicalize_name(r.name) for r in brought for extra in requirement.extras
              if r.marker is not None and r.marker.evaluate({"extra": extra})}
    assert wanted and wanted <= set(pins), sorted(wanted - set(pins))
