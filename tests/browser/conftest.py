"""Browser tests: Debian's Chromium driven by Playwright against a real `carepath serve`.

Fixtures other browser tests build on:

    browser                      a headless Chromium for the whole session
    live_server                  the app on a free port, SQLite in a temp folder (.url(path), .env)
    enrol_staff(live_server, email, role) -> (password, totp_secret)   via the CLI and the page
    sign_in_staff(page, live_server, email, password, totp_secret)     through the sign-in form
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest

from tests.integration.servers import ServerProcess, carepath_env, run_carepath

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "a browser-typed password 42"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Fails under CI=true when Chromium cannot start, skips elsewhere."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as missing:
        if _in_ci():
            pytest.fail(f"CI=true and Playwright is not installed: {missing}")
        pytest.skip(f"Playwright is not installed: {missing}")
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
    except Error as failed:
        playwright.stop()
        if _in_ci():
            pytest.fail(f"CI=true and Chromium ({CHROMIUM}) does not start: {failed}")
        pytest.skip(f"Chromium ({CHROMIUM}) does not start: {failed}")
    yield launched
    launched.close()
    playwright.stop()


@pytest.fixture
def live_server(tmp_path: Any) -> Iterator[ServerProcess]:
    """`carepath serve` on a free port, its own SQLite folder; `db init` and the demo intake done."""
    env = carepath_env({"CAREPATH_DATA_DIR": str(tmp_path / "data"), "CAREPATH_SECRET": "b" * 40})
    run_carepath(env, "db", "init")
    run_carepath(env, "demo")
    with ServerProcess.embedded(env, log_dir=tmp_path) as server:
        yield server


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page, at phone size."""
    context = browser.new_context(viewport=PHONE)
    opened = context.new_page()
    yield opened
    context.close()


def next_code(secret: str, used: set[str] | None = None) -> str:
    """The authenticator app's current code; waits for the next one if this one was used."""
    totp = pyotp.TOTP(secret)
    code = totp.now()
    while used is not None and code in used:
        time.sleep(1)
        code = totp.now()
    if used is not None:
        used.add(code)
    return code


def add_staff_by_cli(live_server: ServerProcess, email: str, role: str) -> str:
    """`carepath staff add`; the enrolment link it prints (on the live server's base URL)."""
    added = run_carepath(
        live_server.env, "staff", "add", email, "--role", role, "--base-url", live_server.base_url
    )
    found = re.search(r"(http://\S+/staff/enrol/\S+)", added.stdout)
    assert found, added.stdout
    return found.group(1)


def enrol_in_page(page: Any, link: str, password: str = PASSWORD) -> str:
    """Enrol on the real page: read the key shown as text, type a password and a code."""
    page.goto(link)
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.fill("#password", password)
    page.fill("#password_confirm", password)
    page.fill("#code", next_code(secret))
    page.click("#enrol")
    page.wait_for_url("**/staff/sign-in?enrolled=1")
    return secret


@pytest.fixture
def enrol_staff(browser: Any) -> Any:
    """enrol_staff(live_server, email, role) -> (password, totp_secret), in a throw-away context."""

    def enrol(live_server: ServerProcess, email: str, role: str) -> tuple[str, str]:
        link = add_staff_by_cli(live_server, email, role)
        context = browser.new_context(viewport=DESKTOP)
        try:
            secret = enrol_in_page(context.new_page(), link)
        finally:
            context.close()
        return PASSWORD, secret

    return enrol


@pytest.fixture
def sign_in_staff() -> Any:
    """sign_in_staff(page, live_server, email, password, totp_secret): signed in on `page`."""
    used: dict[str, set[str]] = {}

    def sign_in(
        page: Any, live_server: ServerProcess, email: str, password: str, secret: str
    ) -> None:
        page.goto(live_server.url("/staff/sign-in"))
        page.fill("#email", email)
        page.fill("#password", password)
        page.fill("#code", next_code(secret, used.setdefault(secret, set())))
        page.click("#sign-in")
        page.wait_for_url(lambda url: "/staff/sign-in" not in url)

    return sign_in
