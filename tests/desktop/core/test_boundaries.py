"""The core stays pure and the desktop agent uses only the protocol from the backend."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CORE = sorted((ROOT / "desktop_agent" / "core").glob("*.py"))
SHELLS = ("connection.py", "errors.py", "cli.py")
OWNED = [*CORE, *(ROOT / "desktop_agent" / name for name in SHELLS)]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_the_core_imports_no_qt_no_sockets_and_no_app_layers(path: Path) -> None:
    forbidden = (
        "PySide6",
        "qasync",
        "websockets",
        "socket",
        "asyncio",
        "desktop_agent.ui",
        "desktop_agent.platform",
        "desktop_agent.connection",
    )
    bad = {
        m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in forbidden)
    }
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", OWNED, ids=lambda p: p.name)
def test_only_the_protocol_module_of_the_backend_is_imported(path: Path) -> None:
    backend = {m for m in imported_modules(path) if m == "backend" or m.startswith("backend.")}
    assert backend <= {"backend.protocol"}, f"{path.name} imports {sorted(backend)}"
