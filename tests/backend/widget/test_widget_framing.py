"""Who may frame the widget: the sites in ``visitor_origins`` (and the server's own
pages), not any site that would like its visitors to chat through it. Checked in
headless Chromium with a page served from another origin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.backend.widget.harness import INBOX, WAIT_SECONDS, LiveBackend


class Website:
    """A website on its own origin (another port of 127.0.0.1) whose page frames the
    widget at ``widget_url`` and records when the frame has loaded."""

    def __init__(self) -> None:
        self.widget_url = ""
        site = self

        class Page(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = (
                    "<!doctype html><title>Shop</title>"
                    f'<iframe id="chat" src="{site.widget_url}" width="360" height="600"'
                    ' onload="window.chatLoaded = true"></iframe>'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def website() -> Iterator[Website]:
    site = Website()
    yield site
    site.close()


def framed_widget_works(browser: Any, website: Website, live: LiveBackend) -> bool:
    """Open the website; True when the framed widget page loaded and runs, False when
    the browser refused to show it in the frame."""
    website.widget_url = f"{live.http_url}/widget/?inbox={INBOX}"
    browser.get(website.origin + "/")
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.execute_script("return window.chatLoaded === true")
    )
    browser.switch_to.frame(browser.find_element(By.ID, "chat"))
    try:
        if not browser.find_elements(By.ID, "widget"):
            return False
        # The widget's script ran and asked for a name: it is usable from this site.
        WebDriverWait(browser, WAIT_SECONDS).until(
            lambda b: b.find_element(By.ID, "widget").get_attribute("data-view") != "loading"
        )
        return True
    finally:
        browser.switch_to.default_content()


def test_a_site_not_in_visitor_origins_cannot_frame_the_widget(
    make_backend: Any, browser: Any, website: Website
) -> None:
    live: LiveBackend = make_backend(visitor_origins=("https://shop.example",))
    assert framed_widget_works(browser, website, live) is False


def test_a_site_in_visitor_origins_frames_the_widget(
    make_backend: Any, browser: Any, website: Website
) -> None:
    live: LiveBackend = make_backend(visitor_origins=("https://shop.example", website.origin))
    assert framed_widget_works(browser, website, live) is True


def test_a_wildcard_lets_any_site_frame_the_widget(
    make_backend: Any, browser: Any, website: Website
) -> None:
    live: LiveBackend = make_backend(visitor_origins=("*",))
    assert framed_widget_works(browser, website, live) is True
