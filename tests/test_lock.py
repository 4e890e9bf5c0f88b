"""The test environment holds exactly what uv.lock pins (issue 9: reproducible installs).

scripts/lib/setup.sh syncs the environment from the lock and records which extras it
asked for; here the installed distributions are compared with the lock, both ways.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SYNC_RECORD = Path(sys.prefix) / ".deskbell-sync"


def installed() -> dict[str, str]:
    """Every distribution in this interpreter's environment, by canonical name."""
    return {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions()
    }


def locked_versions() -> dict[str, set[str]]:
    """Every version uv.lock holds of each package (any platform, any Python)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        versions.setdefault(canonicalize_name(package["name"]), set()).add(package["version"])
    return versions


def required_here(extras: list[str]) -> dict[str, str]:
    """What the lock installs for these extras on this interpreter and platform."""
    uv = os.environ.get("DESKBELL_UV") or shutil.which("uv")
    assert uv, "uv is not on PATH and DESKBELL_UV is not set: run the tests with scripts/test"
    command = [uv, "export", "--frozen", "--no-hashes", "--no-header", "--no-emit-project"]
    command += ["--no-annotate", *(arg for extra in extras for arg in ("--extra", extra))]
    lines = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    wanted: dict[str, str] = {}
    for line in lines.splitlines():
        requirement, _, marker = line.partition(";")
        if not requirement.strip() or requirement.lstrip().startswith(("#", "-")):
            continue
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        name, _, version = requirement.strip().partition("==")
        wanted[canonicalize_name(name)] = version
    return wanted


@pytest.fixture(scope="module")
def sync_record() -> tuple[list[str], str]:
    if not SYNC_RECORD.exists():
        pytest.fail(f"{sys.prefix} was not made by scripts/test (no {SYNC_RECORD.name})")
    extras, mode = SYNC_RECORD.read_text().split("\n")[:2]
    return [extra for extra in extras.split(",") if extra], mode


def test_every_installed_distribution_is_a_locked_version() -> None:
    lock = locked_versions()
    here = installed()
    here.pop("deskbell")  # the project itself, installed editable from this checkout
    strays = {name: version for name, version in here.items() if version not in lock.get(name, ())}
    assert strays == {}, "installed but not in uv.lock at that version"


def test_every_locked_requirement_is_installed_at_its_locked_version(
    sync_record: tuple[list[str], str],
) -> None:
    extras, mode = sync_record
    wanted = required_here(extras)
    assert "websockets" in wanted and "msgspec" in wanted  # the export was read
    here = installed()
    differing = {
        name: (version, here.get(name))
        for name, version in wanted.items()
        if here.get(name) != version
    }
    assert differing == {}, "locked version vs installed (None: missing)"
    if mode == "exact":  # nothing beyond what these extras lock
        extra = set(here) - set(wanted) - {"deskbell"}
        assert extra == set()
