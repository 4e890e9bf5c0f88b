"""The hosted installers workflow: valid YAML, every step the issue names, for Windows
and macOS, using files that exist; and the docs say whether it has run."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "installers.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return list(workflow["jobs"][job]["steps"])


def step_text(step: dict[str, Any]) -> str:
    return f"{step.get('name', '')}\n{step.get('run', '')}"


def find(workflow: dict[str, Any], job: str, pattern: str) -> dict[str, Any]:
    for step in steps(workflow, job):
        if re.search(pattern, step_text(step)):
            return step
    raise AssertionError(f"no {job} step matches {pattern!r}")


def test_workflow_runs_on_hosted_windows_and_macos(workflow: dict[str, Any]) -> None:
    # YAML 1.1 reads the key `on` as True.
    triggers = workflow.get("on", workflow.get(True))
    assert "workflow_dispatch" in triggers
    assert workflow["jobs"]["windows"]["runs-on"] == "windows-latest"
    assert workflow["jobs"]["macos"]["runs-on"] == "macos-latest"
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            assert "name" in step, step
            assert ("uses" in step) != ("run" in step), step["name"]


def test_windows_builds_installs_checks_and_uninstalls_in_order(workflow: dict[str, Any]) -> None:
    order = [
        find(workflow, "windows", r"PyInstaller .*packaging/deskbell\.spec"),
        find(workflow, "windows", r"wix build packaging/windows/deskbell\.wxs"),
        find(workflow, "windows", r"msiexec.*'/qn', \"SERVER_URL="),
        find(workflow, "windows", r'reg query "HKLM\\SOFTWARE\\Deskbell"'),
        find(workflow, "windows", r"System\.AppUserModel\.ID"),
        find(workflow, "windows", r"deskbell\.exe\" --selftest"),
        find(workflow, "windows", r"'/x', 'dist\\deskbell\.msi', '/qn'"),
    ]
    listed = steps(workflow, "windows")
    positions = [listed.index(step) for step in order]
    assert positions == sorted(positions)


def test_macos_builds_app_and_pkg_installs_and_runs_the_selftest(workflow: dict[str, Any]) -> None:
    order = [
        find(workflow, "macos", r"packaging/macos/build-pkg"),
        find(workflow, "macos", r"installer -pkg dist/Deskbell-\*\.pkg -target /"),
        find(workflow, "macos", r"Managed Preferences.*ServerUrl"),
        find(workflow, "macos", r"Uninstall"),
    ]
    listed = steps(workflow, "macos")
    positions = [listed.index(step) for step in order]
    assert positions == sorted(positions)
    assert "--selftest" in order[2]["run"]


def test_signing_only_runs_when_the_secrets_exist(workflow: dict[str, Any]) -> None:
    step = find(workflow, "macos", r"Import signing certificates")
    assert step["if"] == "env.HAVE_SIGNING == 'true'"
    assert "secrets.MACOS_CERTIFICATES_P12" in workflow["jobs"]["macos"]["env"]["HAVE_SIGNING"]


def test_files_the_workflow_uses_exist() -> None:
    for path in (
        "packaging/deskbell.spec",
        "packaging/deskbell_entry.py",
        "packaging/windows/deskbell.wxs",
        "packaging/macos/Info.plist",
        "packaging/macos/dev.deskbell.Deskbell.plist",
    ):
        assert (ROOT / path).is_file(), path
    assert os.access(ROOT / "packaging" / "macos" / "build-pkg", os.X_OK)


def test_docs_say_the_workflow_has_not_run_yet() -> None:
    docs = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    assert "installers.yml" in docs
    assert re.search(r"not (yet )?(been )?run", docs)


@pytest.mark.parametrize("job", ["windows", "macos"])
def test_installers_are_built_from_the_lock_with_hashes(workflow: dict[str, Any], job: str) -> None:
    install = find(workflow, job, r"uv\.lock")["run"]
    assert "uv export --frozen --extra desktop --extra package" in install
    assert "pip install --require-hashes -r locked-requirements.txt" in install
    assert "pip install --no-deps ." in install
    for step in steps(workflow, job):  # nothing else resolves versions on its own
        assert not re.search(r"pip install (?!--)[\"'.]", step.get("run", "")), step["name"]
