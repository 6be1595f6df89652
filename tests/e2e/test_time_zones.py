"""Times on pages are in the intake's own zone, the zone named, in English and in French, on both
sides of a daylight-saving change; the JSON API keeps UTC with offsets."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest
from bs4 import BeautifulSoup

from tests.conftest import CONTACT, ELIGIBILITY, about_you, make_app
from tests.forms import hidden_fields, post_form
from tests.officer_helpers import caught_up, running_worker
from tests.staff_helpers import staff_client
from web.times import local_time

WEST = "America/Vancouver"
MANILA = "Asia/Manila"
SUMMER_CLOSE = datetime(2099, 7, 15, 19, 0, tzinfo=UTC)  # 12:00 PDT (UTC-7)
WINTER_CLOSE = datetime(2099, 1, 15, 20, 0, tzinfo=UTC)  # 12:00 PST (UTC-8)
WINTER_OPEN = datetime(2099, 1, 10, 17, 0, tzinfo=UTC)  # 09:00 PST


@pytest.fixture
def zoned(sqlite_env):
    """Beside the default intake `test` (Toronto): `west` (Vancouver, open, closing in summer),
    `winter` (Vancouver, open, closing in winter), `manila` (no daylight saving, not yet open)."""
    app = make_app(sqlite_env)
    registry = app.extensions["carepath.registry"]
    for code, zone, times in (
        ("west", WEST, {"closes_at": SUMMER_CLOSE}),
        ("winter", WEST, {"closes_at": WINTER_CLOSE}),
        ("manila", MANILA, {"opens_at": WINTER_OPEN}),
    ):
        registry.define_intake(
            code=code,
            name=code.title(),
            stream="",
            policy="first_come",
            capacity=5,
            time_zone=zone,
            actor="t",
            **times,
        )
        if "closes_at" in times:
            registry.open_intake(code, actor="t")
    yield app, sqlite_env
    registry.close()


def text(html: str) -> str:
    return " ".join(BeautifulSoup(html, "html.parser").get_text(" ").split())


def norm(value: str) -> str:
    return " ".join(value.split())


def submitted_in(app, code: str, n: int, lang: str = "en"):
    client = app.test_client()
    suffix = f"?lang={lang}"
    post_form(client, f"/intakes/{code}/register{suffix}", about_you(n))
    post_form(client, "/application/steps/contact", CONTACT)
    post_form(client, "/application/steps/eligibility", ELIGIBILITY)
    review = client.get("/application/review")
    assert client.post("/application/submit", data=hidden_fields(review.text)).status_code == 302
    with client.session_transaction() as session:
        case = app.extensions["carepath.registry"].get_case(UUID(session["case_id"]))
    return client, case


@pytest.mark.parametrize(
    ("lang", "summer", "winter"),
    [
        ("en", "Pacific Daylight Time", "Pacific Standard Time"),
        ("fr", "heure avancée du Pacifique", "heure normale du Pacifique"),
    ],
)
def test_the_intake_list_shows_each_close_in_its_own_zone_either_side_of_dst(
    zoned, lang, summer, winter
):
    app, _ = zoned
    page = text(app.test_client().get(f"/?lang={lang}").text)
    summer_close = norm(local_time(SUMMER_CLOSE, WEST, lang))
    winter_close = norm(local_time(WINTER_CLOSE, WEST, lang))
    assert summer_close in page
    assert winter_close in page
    assert summer in summer_close
    assert winter in winter_close
    # noon, local: the wall clock, not the UTC hour
    assert ("12:00 p.m." if lang == "en" else "12 h 00") in summer_close
    assert ("12:00 p.m." if lang == "en" else "12 h 00") in winter_close
    assert "UTC" not in page


@pytest.mark.parametrize(
    ("lang", "named"), [("en", "Philippine Standard Time"), ("fr", "heure normale des Philippines")]
)
def test_an_intake_not_yet_open_says_when_it_opens_in_its_zone(zoned, lang, named):
    app, _ = zoned
    response = app.test_client().get(f"/intakes/manila/register?lang={lang}")
    page = text(response.text)
    opens = norm(local_time(WINTER_OPEN, MANILA, lang))
    assert opens in page
    assert named in opens
    assert ("Jan 11, 2099, 1:00 a.m." if lang == "en" else "11 janv. 2099, 01 h 00") in opens
    public = text(app.test_client().get(f"/intakes/manila?lang={lang}").text)
    assert opens in public
    assert "UTC" not in page + public


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_receipt_and_status_show_the_applicants_times_in_the_intakes_zone(zoned, lang):
    app, _ = zoned
    client, case = submitted_in(app, "west", 1, lang)
    sent = norm(local_time(case.submitted_at, WEST, lang))
    started = norm(local_time(case.registered_at, WEST, lang))
    receipt = text(client.get("/application/receipt").text)
    status = text(client.get("/application/status").text)
    assert sent in receipt
    assert sent in status
    assert started in status
    assert ("Pacific" if lang == "en" else "du Pacifique") in sent
    assert "UTC" not in receipt + status

    # the API keeps ISO 8601 with an offset
    api = client.get("/api/v1/case").get_json()
    assert datetime.fromisoformat(api["submitted_at"]) == case.submitted_at
    assert datetime.fromisoformat(api["submitted_at"]).utcoffset() is not None


def test_officers_see_case_times_and_the_board_in_the_intakes_zone(zoned):
    app, env = zoned
    _, case = submitted_in(app, "west", 2)
    officer = staff_client(app, "officer")
    with running_worker(env):
        caught_up(app)
        page = text(officer.get(f"/staff/cases/{case.reference}").text)
        board = text(officer.get("/staff/board?intake=west").text)
        fr_board = text(officer.get("/staff/board?intake=west&lang=fr").text)
    assert norm(local_time(case.submitted_at, WEST, "en")) in page
    assert "UTC" not in page
    assert "Minute (Pacific Time)" in board
    assert "Time zone: Pacific Time." in board
    assert "Minute (heure du Pacifique)" in fr_board
    assert "UTC" not in board + fr_board


def test_the_api_names_each_intakes_zone_and_keeps_utc_offsets(zoned):
    app, _ = zoned
    west = app.test_client().get("/api/v1/intakes/west").get_json()
    assert west["time_zone"] == WEST
    assert datetime.fromisoformat(west["closes_at"]) == SUMMER_CLOSE
    assert west["closes_at"].endswith("+00:00")
    listed = {
        i["code"]: i["time_zone"]
        for i in app.test_client().get("/api/v1/intakes").get_json()["intakes"]
    }
    assert listed == {"test": "America/Toronto", "west": WEST, "winter": WEST}  # the open ones
    manila = app.test_client().get("/api/v1/intakes/manila").get_json()
    assert (manila["time_zone"], manila["opens_at"]) == (MANILA, "2099-01-10T17:00:00+00:00")
