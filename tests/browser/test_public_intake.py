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


def wait_for(page: Any, selector: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the allocator works in the background
        page.reload()
        if page.locator(selector).count():
            return
        time.sleep(0.5)
    raise AssertionError(f"{selector} never appeared")


def test_a_lottery_page_publishes_each_input_as_it_exists(
    browser: Any, live_server: ServerProcess, tmp_path: Path
) -> None:
    env = live_server.env
    run_carepath(
        env, "intake", "create", "--code", "draw26", "--name", "Draw 2026",
        "--capacity", "3", "--policy", "lottery", "--pool", "braille=1",
        "--pool-label", "braille:en=I read braille", "--pool-label", "braille:fr=Je lis le braille",
    )  # fmt: skip
    run_carepath(env, "intake", "open", "draw26", "--beacon", "none")
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
    assert page.locator("#draw-warning").is_visible()  # no beacon: only as good as the operator
    assert page.locator("#pools").inner_text().splitlines() == [
        "I read braille: 1",
        "Everyone else (general places): 2",
    ]
    assert page.get_by_text("Not yet: fixed when registration closes.").first.is_visible()
    page.screenshot(path=str(folder / "public-open-phone.png"), full_page=True)

    page.get_by_role("link", name="Start now").click()  # the register form asks about the pool
    group = page.get_by_role("group", name="Do any of these apply to you?")
    assert group.get_by_label("I read braille").is_visible()
    assert group.get_by_label("None of these").is_visible()
    group.get_by_label("I read braille").check()
    page.screenshot(path=str(folder / "register-pool-phone.png"), full_page=True)

    run_carepath(env, "intake", "close", "draw26")
    page.goto(live_server.url("/intakes/draw26"))
    wait_for(page, "#entries-digest")  # fixed and published before any randomness exists
    assert page.locator("#entries").inner_text() == "0"
    empty = hashlib.sha256(b"").hexdigest()  # no entries: the digest of the empty text
    assert page.locator("#entries-digest").inner_text() == empty
    assert page.locator("#secret").count() == 0
    assert page.get_by_text("Not yet: revealed after the close.").is_visible()
    page.screenshot(path=str(folder / "public-closed-phone.png"), full_page=True)

    value = "5eed" * 16
    run_carepath(env, "intake", "draw", "draw26", "--operator-value", value)
    wait_for(page, "#combined-seed")
    secret = page.locator("#secret").inner_text()
    assert hashlib.sha256(secret.encode()).hexdigest() == commitment
    assert page.locator("#randomness").inner_text() == value
    seed = hashlib.sha256((secret + value).encode()).hexdigest()
    assert page.locator("#seed").inner_text() == seed
    combined = hashlib.sha256((seed + empty).encode()).hexdigest()
    assert page.locator("#combined-seed").inner_text() == combined
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(folder / "public-drawn-desktop.png"), full_page=True)
    context.close()

    french = browser.new_context(viewport=PHONE, locale="fr-CA")
    page = french.new_page()
    page.goto(live_server.url("/intakes/draw26"))
    assert page.get_by_role("heading", name="Vérifiez le tirage vous-même").is_visible()
    assert "Je lis le braille: 1" in page.locator("#pools").inner_text()
    page.screenshot(path=str(folder / "public-drawn-phone-fr.png"), full_page=True)
    french.close()
