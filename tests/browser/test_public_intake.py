"""The public page of a lottery intake in Chromium: its inputs appear as each exists, from the
home page's link, on phone and desktop, in English and French. Screenshots go to
$CAREPATH_SCREENSHOTS (default: the test's tmp folder)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE
from tests.integration.servers import ServerProcess, run_carepath

pytestmark = pytest.mark.slow


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CAREPATH_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_lottery_page_publishes_each_input_as_it_exists(
    browser: Any, live_server: ServerProcess, tmp_path: Path
) -> None:
    env = live_server.env
    run_carepath(
        env, "intake", "create", "--code", "draw26", "--name", "Draw 2026",
        "--capacity", "2", "--policy", "lottery",
    )  # fmt: skip
    run_carepath(env, "intake", "open", "draw26")
    folder = shots(tmp_path)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(live_server.url("/"))
    page.locator(".card", has_text="Draw 2026").get_by_role(
        "link", name="How places are given"
    ).click()
    assert page.url.endswith("/intakes/draw26")
    commitment = page.locator("#seed-commitment").inner_text()
    assert len(commitment) == 64
    assert page.get_by_text("Not yet: revealed when registration closes.").is_visible()
    page.screenshot(path=str(folder / "public-open-phone.png"), full_page=True)

    run_carepath(env, "intake", "close", "draw26")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the allocator draws in the background
        page.reload()
        if page.locator("#entries-digest").count():
            break
        time.sleep(0.5)
    seed = page.locator("#seed").inner_text()
    assert hashlib.sha256(seed.encode()).hexdigest() == commitment
    assert page.locator("#entries").inner_text() == "0"
    assert len(page.locator("#combined-seed").inner_text()) == 64
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(folder / "public-drawn-desktop.png"), full_page=True)
    context.close()

    french = browser.new_context(viewport=PHONE, locale="fr-CA")
    page = french.new_page()
    page.goto(live_server.url("/intakes/draw26"))
    assert page.get_by_role("heading", name="Vérifiez le tirage vous-même").is_visible()
    page.screenshot(path=str(folder / "public-drawn-phone-fr.png"), full_page=True)
    french.close()
