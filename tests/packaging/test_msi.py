"""The Windows installer, checked here table by table in its wixl build (it cannot be
installed on Linux), and kept in step with the WiX v5 source the Windows runner builds."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from desktop_agent.platform.policy_sources import INSTALLER_KEY, reading_from_registry_values
from desktop_agent.platform.toasts import DesktopNotifierToaster

ROOT = Path(__file__).resolve().parents[2]
WINDOWS = ROOT / "packaging" / "windows"
V5 = {"w": "http://wixtoolset.org/schemas/v4/wxs"}
V3 = {"w": "http://schemas.microsoft.com/wix/2006/wi"}
HKLM = "2"  # the Registry table's Root for HKEY_LOCAL_MACHINE

pytestmark = pytest.mark.skipif(
    not (shutil.which("wixl") and shutil.which("msiinfo") and shutil.which("msibuild")),
    reason="needs wixl and msitools (apt-get install wixl msitools)",
)


def toast_identity() -> str:
    """The AppUserModelID desktop-notifier gives toasts: the toaster's app name."""
    default = inspect.signature(DesktopNotifierToaster).parameters["app_name"].default
    assert isinstance(default, str)
    return default


@pytest.fixture(scope="module")
def msi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("msi") / "deskbell.msi"
    subprocess.run([str(WINDOWS / "build-wixl-msi"), str(out)], check=True, capture_output=True)
    return out


def table(msi: Path, name: str) -> list[dict[str, str]]:
    """Rows of an MSI table as dicts, from `msiinfo export` (IDT: names, types, keys, rows)."""
    text = subprocess.run(
        ["msiinfo", "export", str(msi), name], check=True, capture_output=True, text=True
    ).stdout
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    columns = lines[0].split("\t")
    return [dict(zip(columns, row.split("\t"), strict=False)) for row in lines[3:]]


def test_the_msi_has_the_tables_it_needs(msi: Path) -> None:
    tables = subprocess.run(
        ["msiinfo", "tables", str(msi)], check=True, capture_output=True, text=True
    ).stdout.split()
    for name in ("Property", "Registry", "Shortcut", "MsiShortcutProperty", "Upgrade", "File"):
        assert name in tables


def test_properties_per_machine_autostart_default_and_secure(msi: Path) -> None:
    props = {row["Property"]: row["Value"] for row in table(msi, "Property")}
    assert props["ALLUSERS"] == "1"  # per-machine
    assert props["AUTOSTART"] == "1"
    assert props["ProductName"] == "Deskbell"
    assert props["UpgradeCode"] == "{AC4C0215-8845-4E53-ACCA-8867649DF2E3}"
    secure = props["SecureCustomProperties"].split(";")
    assert {"SERVER_URL", "AUTOSTART", "WIX_UPGRADE_DETECTED"} <= set(secure)


def test_registry_writes_installer_defaults_where_the_app_reads_them(msi: Path) -> None:
    rows = table(msi, "Registry")
    defaults = {
        row["Name"]: row["Value"]
        for row in rows
        if row["Root"] == HKLM and row["Key"].rstrip("\\") == INSTALLER_KEY
    }
    assert defaults["ServerUrl"] == "[SERVER_URL]"
    assert defaults["AutoStart"] == "#[AUTOSTART]"  # '#': a REG_DWORD
    # What msiexec SERVER_URL=wss://x AUTOSTART=0 leaves there, read by the app.
    reading = reading_from_registry_values(
        [("ServerUrl", "wss://x.example.org", 1), ("AutoStart", 0, 4)], "HKLM"
    )
    assert reading.values == {"ServerUrl": "wss://x.example.org", "AutoStart": 0}
    run = [r for r in rows if r["Key"] == r"SOFTWARE\Microsoft\Windows\CurrentVersion\Run"]
    assert run and run[0]["Value"] == '"[INSTALLFOLDER]deskbellw.exe" --login'
    links = {r["Key"].rstrip("\\") for r in rows}
    assert r"SOFTWARE\Classes\deskbell\shell\open\command" in links


def test_start_menu_shortcut_carries_the_toast_identity(msi: Path) -> None:
    (shortcut,) = table(msi, "Shortcut")
    assert shortcut["Directory_"] == "ProgramMenuFolder"
    assert shortcut["Name"] == "Deskbell"
    assert shortcut["Target"] == "[INSTALLFOLDER]deskbellw.exe"
    (prop,) = table(msi, "MsiShortcutProperty")
    assert prop["Shortcut_"] == shortcut["Shortcut"]
    assert prop["PropertyKey"] == "System.AppUserModel.ID"
    assert prop["PropVariantValue"] == toast_identity() == "Deskbell"


def test_upgrade_table_replaces_older_versions_and_refuses_downgrades(msi: Path) -> None:
    rows = {row["ActionProperty"]: row for row in table(msi, "Upgrade")}
    older, newer = rows["WIX_UPGRADE_DETECTED"], rows["WIX_DOWNGRADE_DETECTED"]
    code = "{AC4C0215-8845-4E53-ACCA-8867649DF2E3}"
    assert older["UpgradeCode"] == newer["UpgradeCode"] == code
    assert older["VersionMin"] == "" and older["VersionMax"] == "0.1.0"
    assert newer["VersionMin"] == "0.1.0" and newer["VersionMax"] == ""
    actions = {row["Action"] for row in table(msi, "InstallExecuteSequence")}
    assert {"FindRelatedProducts", "RemoveExistingProducts"} <= actions


def test_the_wix_v5_source_says_the_same_as_the_wixl_one() -> None:
    v5 = ET.parse(WINDOWS / "deskbell.wxs").getroot()
    v3 = ET.parse(WINDOWS / "deskbell-wixl.wxs").getroot()
    package = v5.find("w:Package", V5)
    product = v3.find("w:Product", V3)
    assert package is not None and product is not None
    assert package.get("UpgradeCode") == product.get("UpgradeCode")
    assert package.get("Scope") == "perMachine"
    assert v5.find(".//w:MajorUpgrade", V5) is not None
    props = {p.get("Id"): p for p in v5.iter(f"{{{V5['w']}}}Property")}
    assert props["SERVER_URL"].get("Secure") == props["AUTOSTART"].get("Secure") == "yes"
    (shortcut_property,) = v5.iter(f"{{{V5['w']}}}ShortcutProperty")
    assert shortcut_property.get("Key") == "System.AppUserModel.ID"
    assert shortcut_property.get("Value") == toast_identity()
    guids = {
        c.get("Id"): c.get("Guid") for c in v5.iter(f"{{{V5['w']}}}Component") if c.get("Guid")
    }
    guids3 = {c.get("Id"): c.get("Guid") for c in v3.iter(f"{{{V3['w']}}}Component")}
    for component, guid in guids.items():
        assert guids3[component] == guid, component

    def registry(root: ET.Element, ns: dict[str, str]) -> set[str]:
        return {v.get("Name") or "" for v in root.iter(f"{{{ns['w']}}}RegistryValue")}

    assert registry(v5, V5) == registry(v3, V3)
    autostart = [c for c in v5.iter(f"{{{V5['w']}}}Component") if c.get("Id") == "AutoStartAtLogin"]
    assert autostart[0].get("Condition") == 'AUTOSTART = "1"'
