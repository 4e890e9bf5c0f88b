"""Fixtures for the widget tests: a backend factory and a headless Chromium.

Needs Debian's ``chromium`` and ``chromium-driver`` (or ``DESKBELL_CHROMIUM`` and
``DESKBELL_CHROMEDRIVER`` pointing at a Chromium and its matching driver) and the
``selenium`` package. Without the browser the tests are skipped, saying so; without
selenium they fail, since it is a declared test dependency.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backend.widget.harness import CHROMIUM_FLAGS, INBOX, LiveBackend, browser_paths


@pytest.fixture
def make_backend(tmp_path: Path) -> Iterator[Callable[..., LiveBackend]]:
    """Start a backend on a fresh database with the inbox ``Support``; ``config`` goes
    to :class:`Config` (e.g. ``visitor_messages_per_minute=1``)."""
    started: list[LiveBackend] = []

    def make(**config: Any) -> LiveBackend:
        live = LiveBackend(tmp_path / "deskbell.sqlite3", **config)
        live.start()
        started.append(live)
        live.call(lambda b: b.service.store.add_inbox(INBOX))
        return live

    yield make
    for live in started:
        live.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium with a fresh profile, driven by Selenium."""
    paths = browser_paths()
    if paths is None:
        pytest.skip(
            "headless Chromium and its driver are not installed "
            "(apt-get install -y chromium chromium-driver)"
        )
    from selenium import webdriver

    chromium, driver_path = paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(
        executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log")
    )
    driver = webdriver.Chrome(options=options, service=service)
    # The size of a chat iframe on a website, narrower than a headless window can be.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 360, "height": 640, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        yield driver
    finally:
        try:
            # Shown by pytest when the test failed: what the page logged.
            for entry in driver.get_log("browser"):  # type: ignore[no-untyped-call]
                print("browser:", entry.get("level"), entry.get("message"))
        finally:
            driver.quit()
