"""A real OpenID provider and a real browser for the single sign-on tests.

The provider is panva's ``oidc-provider`` (an OpenID Certified implementation) from npm,
at the version pinned in tests/backend/sso/provider/package-lock.json, installed with
``npm ci`` into ``~/.cache/deskbell/oidc-provider-<lock hash>/`` the first time, and
started with tests/backend/sso/provider/provider.mjs on a free loopback port. Its login
page takes any password; the login name picks an account from :data:`ACCOUNTS`.

The browser step runs in headless Chromium (Selenium), in a thread of its own, because
the app under test must keep running its event loop to receive the redirect.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.backend.widget.harness import CHROMIUM_FLAGS, browser_paths

T = TypeVar("T")

PROVIDER_SOURCE = Path(__file__).resolve().parents[1] / "backend" / "sso" / "provider"
CLIENT_ID = "deskbell-desktop"
OTHER_CLIENT_ID = "another-app"
SCOPES = ("openid", "email", "profile", "groups")
WAIT_SECONDS = 30.0

ACCOUNTS: dict[str, dict[str, Any]] = {
    "alex": {
        "email": "alex@example.org",
        "email_verified": True,
        "name": "Alex Doe",
        "groups": ["Support"],
    },
    "robin": {
        "email": "robin@example.org",
        "email_verified": True,
        "name": "Robin Roe",
        "groups": ["Support", "Not an inbox"],
    },
}
"""Login name -> claims. ``alex`` has a Deskbell agent in the tests; ``robin`` does not."""


def provider_dir() -> Path:
    """The installed provider (``npm ci`` from the committed lock on first use).

    Skips the test when Node.js or npm is missing; fails when ``npm ci`` fails.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are not installed (apt-get install -y nodejs npm)")
    lock = (PROVIDER_SOURCE / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("DESKBELL_CACHE", Path.home() / ".cache" / "deskbell"))
    target = cache / f"oidc-provider-{hashlib.sha256(lock).hexdigest()[:12]}"
    if not (target / "node_modules" / "oidc-provider" / "package.json").exists():
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(PROVIDER_SOURCE / name, staging / name)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm ci of oidc-provider failed:\n{done.stdout}\n{done.stderr}")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    # ES modules resolve imports from the script's own folder: run a copy placed there.
    shutil.copy(PROVIDER_SOURCE / "provider.mjs", target / "provider.mjs")
    return target


class Provider:
    """A running oidc-provider: ``issuer`` is its URL."""

    def __init__(self, process: subprocess.Popen[str], issuer: str) -> None:
        self.process = process
        self.issuer = issuer


@contextmanager
def running_provider(tmp_path: Path, **overrides: Any) -> Iterator[Provider]:
    """Start the provider with the test clients and :data:`ACCOUNTS`; stop it after."""
    folder = provider_dir()
    redirect = ["http://127.0.0.1/callback"]
    config = {
        "clients": [
            {"client_id": CLIENT_ID, "redirect_uris": redirect},
            {"client_id": OTHER_CLIENT_ID, "redirect_uris": redirect},
        ],
        "accounts": ACCOUNTS,
        **overrides,
    }
    config_file = tmp_path / "oidc-provider.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    log = (tmp_path / "oidc-provider.log").open("w")
    process = subprocess.Popen(
        ["node", "provider.mjs", str(config_file)],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(process.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(WAIT_SECONDS)
        line = ready[0] if ready else ""
        if not line.startswith("READY "):
            raise RuntimeError(
                f"oidc-provider did not start: {line!r}; see {tmp_path / 'oidc-provider.log'}"
            )
        yield Provider(process, line.split()[1])
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def headless_chromium(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium with a fresh profile, driven by Selenium; skips without it."""
    paths = browser_paths()
    if paths is None:
        pytest.skip("headless Chromium and its driver are not installed")
    from selenium import webdriver

    chromium, driver_path = paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    service = webdriver.ChromeService(
        executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log")
    )
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


class BrowserStep:
    """The system browser as the app sees it: ``open(url)`` returns at once.

    In a thread, Chromium loads the page, signs in as ``login`` on the provider's form,
    grants consent, and follows the redirect back to the app's loopback address.
    ``join()`` re-raises what went wrong in the thread.
    """

    def __init__(self, driver: Any, login: str) -> None:
        self.driver = driver
        self.login = login
        self.opened: list[str] = []
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __call__(self, url: str) -> None:
        self.opened.append(url)
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()

    def _run(self, url: str) -> None:
        try:
            sign_in_at_provider(self.driver, url, self.login)
        except BaseException as exc:
            try:
                where = f"{self.driver.current_url}: {self.driver.page_source[:2000]}"
            except Exception as inner:
                where = f"(the page could not be read: {inner})"
            # str(): a WebDriverException's repr leaves out chromedriver's message.
            failure = f"{type(exc).__name__}: {str(exc).strip()}"
            self._error = AssertionError(f"the browser step failed ({failure}) at {where}")

    async def run_with(self, step: Awaitable[T]) -> T:
        """Await the app's ``step``; when it fails, say first what the browser saw."""
        try:
            return await step
        except BaseException:
            self.join()
            raise

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(WAIT_SECONDS)
            assert not self._thread.is_alive(), "the browser step did not finish"
        if self._error is not None:
            raise self._error


def sign_in_at_provider(driver: Any, url: str, login: str) -> None:
    """Open ``url``; fill in the login form and grant consent when the provider asks;
    return once the browser is back on the loopback callback."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, WAIT_SECONDS)

    def on_callback() -> bool:
        return str(driver.current_url).startswith("http://127.0.0.1:") and "/callback" in str(
            driver.current_url
        )

    for _ in range(3):
        state = wait.until(
            lambda d: (
                "done"
                if on_callback()
                else "login"
                if d.find_elements(By.NAME, "login")
                else "consent"
                if d.find_elements(By.CSS_SELECTOR, "input[name=prompt][value=consent]")
                else None
            )
        )
        if state == "done":
            return
        if state == "login":
            driver.find_element(By.NAME, "login").send_keys(login)
            driver.find_element(By.NAME, "password").send_keys("any password")
        page = driver.current_url
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        # Each step of the flow has an address of its own (a new interaction id, then the
        # callback): wait for the next one. Not for the button to go stale: the click only
        # schedules the form's navigation, and asking about the button while its document
        # is being replaced fails with an "unhandled inspector error" (a plain
        # WebDriverException), not with a stale element reference.
        wait.until(expected_conditions.url_changes(page))
    wait.until(lambda d: on_callback())


# Fixtures for the SSO suites (tests/conftest.py loads this module as a plugin).
@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    """A running oidc-provider of this test's own."""
    with running_provider(tmp_path) as running:
        yield running


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    """Headless Debian Chromium, driven by Selenium."""
    with headless_chromium(tmp_path) as driver:
        yield driver
