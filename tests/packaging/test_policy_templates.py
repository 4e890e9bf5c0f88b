"""The Group Policy template and the macOS profile offer every policy the app reads,
under the names, keys and types the app's policy sources expect."""

from __future__ import annotations

import plistlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from desktop_agent import APP_ID
from desktop_agent.core.settings import POLICY_NAMES, Settings, StaticPolicy
from desktop_agent.platform.policy_sources import (
    POLICY_KEY,
    REG_DWORD,
    REG_SZ,
    reading_from_plist,
    reading_from_registry_values,
)

ROOT = Path(__file__).resolve().parents[2]
ADMX = ROOT / "packaging" / "windows" / "policy" / "deskbell.admx"
ADML = ROOT / "packaging" / "windows" / "policy" / "en-US" / "deskbell.adml"
PROFILE = ROOT / "packaging" / "macos" / "deskbell-example.mobileconfig"
NS = {"p": "http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions"}


def admx_values() -> dict[str, ET.Element]:
    """Registry value name → the policy element that writes it."""
    root = ET.parse(ADMX).getroot()
    values: dict[str, ET.Element] = {}
    for policy in root.iterfind(".//p:policy", NS):
        assert policy.get("key") == POLICY_KEY
        if policy.get("valueName"):
            values[policy.get("valueName", "")] = policy
        for element in policy.iterfind("p:elements/*", NS):
            values[element.get("valueName", "")] = element
    return values


def test_admx_offers_every_policy_under_the_policies_key() -> None:
    assert set(admx_values()) == POLICY_NAMES


def test_admx_values_are_read_by_the_app_as_meant(tmp_path: Path) -> None:
    """What Group Policy writes for each element type, through the registry reader."""
    values = admx_values()
    written: list[tuple[str, object, int]] = []
    for name, element in values.items():
        tag = element.tag.split("}")[1]
        if tag == "policy":  # an on/off policy: DWORD 1 when enabled
            written.append((name, 1, REG_DWORD))
        elif tag == "enum":
            first = element.find("p:item/p:value/p:string", NS)
            assert first is not None
            written.append((name, first.text, REG_SZ))
        elif tag == "text":
            sample = {
                "ServerUrl": "wss://gpo.example.org",
                "ToastCategories": "chat,ticket",
                "MutedInboxes": "Sales, Billing",
                "InboxSounds": "Support=phone-incoming-call,Sales=off",
                "ProxyServer": "http://proxy.example.org:3128",
                "ProxyPacUrl": "http://wpad.example.org/proxy.pac",
                "CaFile": r"C:\ProgramData\Example\company-ca.pem",
            }
            written.append((name, sample[name], REG_SZ))
        elif tag == "decimal":
            written.append((name, 15, REG_DWORD))
    reading = reading_from_registry_values(written, "HKLM")
    assert reading.problems == []
    settings = Settings(tmp_path / "s.toml", policy_sources=[StaticPolicy(reading.values, "test")])
    assert settings.problems == []
    assert settings.server_url == "wss://gpo.example.org"
    assert settings.toast_categories == {"chat", "ticket"}
    assert settings.get("log_level") == "DEBUG"
    assert settings.sign_out_disabled is True
    assert settings.update_check_disabled is True
    assert settings.muted_inboxes == {"Sales", "Billing"}
    assert settings.toast_sound("Support") == "phone-incoming-call"
    assert settings.toast_sound("Sales") is None
    assert settings.away_after_idle_seconds == 15 * 60


def test_adml_has_every_string_and_presentation_the_admx_names() -> None:
    admx = ADMX.read_text(encoding="utf-8")
    adml = ET.parse(ADML).getroot()
    strings = {s.get("id") for s in adml.iterfind(".//p:stringTable/p:string", NS)}
    presentations = {
        p.get("id") for p in adml.iterfind(".//p:presentationTable/p:presentation", NS)
    }
    assert set(re.findall(r"\$\(string\.(\w+)\)", admx)) <= strings
    assert set(re.findall(r"\$\(presentation\.(\w+)\)", admx)) <= presentations


def test_example_profile_sets_every_policy_in_the_app_domain(tmp_path: Path) -> None:
    profile = plistlib.loads(PROFILE.read_bytes())
    (payload,) = profile["PayloadContent"]
    assert payload["PayloadType"] == APP_ID
    assert profile["PayloadScope"] == "System"
    managed = {k: v for k, v in payload.items() if not k.startswith("Payload")}
    assert set(managed) == POLICY_NAMES
    reading = reading_from_plist(plistlib.dumps(managed), "profile")
    assert reading.problems == []
    settings = Settings(tmp_path / "s.toml", policy_sources=[StaticPolicy(reading.values, "test")])
    assert settings.problems == []
    assert settings.is_locked("server_url")
