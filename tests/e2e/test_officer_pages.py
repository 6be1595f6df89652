"""Officers' pages through HTTP: the quota board, the queue, a case, actions, bulk assign, CSV."""

from __future__ import annotations

import csv
import io
import re

import pytest
from bs4 import BeautifulSoup

from domain.values import CaseStatus
from tests.conftest import make_app, send_application
from tests.e2e.test_allocation_status import submit_one
from tests.forms import text_of
from tests.integration.seed import seed_submitted
from tests.officer_helpers import caught_up, running_worker
from tests.staff_helpers import staff_client
from tests.stage_two_helpers import case_id_of

SECRET = "s" * 40


@pytest.fixture
def office(sqlite_env):
    """An intake of 2 places, 4 submitted registrations (2 invited, who have sent their
    applications, and 2 waitlisted), a worker."""
    app = make_app(sqlite_env, capacity=2)
    applicants = [submit_one(app, n) for n in range(1, 5)]
    with running_worker(sqlite_env):
        caught_up(app)
        registry = app.extensions["carepath.registry"]
        for holder in applicants[:2]:
            send_application(registry, case_id_of(holder))
        caught_up(app)
        yield app, applicants, sqlite_env
    app.extensions["carepath.registry"].close()


def references(html: str) -> list[str]:
    return re.findall(r'href="/staff/cases/([0-9A-Z-]+)"', html)


def form_of(html: str, action_suffix: str) -> dict[str, str]:
    """The hidden fields of the form whose action ends with `action_suffix`."""
    soup = BeautifulSoup(html, "html.parser")
    form = soup.find("form", action=re.compile(re.escape(action_suffix) + "$"))
    assert form is not None, f"no form for {action_suffix}"
    return {i["name"]: i.get("value", "") for i in form.find_all("input", type="hidden")}


def cell(html: str, metric: str, pool: str = "general") -> int:
    soup = BeautifulSoup(html, "html.parser")
    found = soup.find("td", attrs={"data-metric": metric, "data-pool": pool})
    assert found is not None, metric
    return int(found.get_text(strip=True).replace(",", ""))


def test_the_quota_board_counts_and_charts_the_intake(office):
    app, _, _ = office
    officer = staff_client(app, "officer")

    page = officer.get("/staff/board?intake=test")

    assert page.status_code == 200
    assert cell(page.text, "registered") == 4
    assert cell(page.text, "submitted") == 4
    assert cell(page.text, "granted") == 0  # both holders sent their applications in time
    assert cell(page.text, "waitlisted") == 2
    assert cell(page.text, "places_left") == 0
    assert text_of(page.text, "places-left") == "0"
    assert page.text.count("<svg") == 2
    assert "Places held against capacity" in page.text
    lag = BeautifulSoup(page.text, "html.parser").find(id="lag")
    assert lag is not None
    assert "casework_view" in lag.get_text()
    assert officer.get("/staff/board?intake=nope").status_code == 404


def test_the_queue_filters_sorts_and_pages_by_cursor(sqlite_env):
    app = make_app(sqlite_env, capacity=50)
    try:
        registry = app.extensions["carepath.registry"]
        seed_submitted(registry, SECRET.encode(), "test", 120, batch=60)
        with running_worker(sqlite_env):
            caught_up(app)
        officer = staff_client(app, "officer")

        first = officer.get("/staff/queue?intake=test")
        assert "120 cases match" in first.text
        seen = references(first.text)
        assert len(seen) == 50
        page = first
        while (link := re.search(r'href="([^"]+)" rel="next"', page.text)) is not None:
            page = officer.get(link.group(1).replace("&amp;", "&"))
            seen.extend(references(page.text))
        assert len(seen) == 120
        assert len(set(seen)) == 120
        back = re.search(r'href="([^"]+)" rel="prev"', page.text)
        assert back is not None
        previous = officer.get(back.group(1).replace("&amp;", "&"))
        assert references(previous.text) == seen[50:100]

        waiting = officer.get("/staff/queue?intake=test&state=waitlisted")
        assert "70 cases match" in waiting.text
        by_reference = officer.get("/staff/queue?sort=reference")
        shown = references(by_reference.text)
        assert shown == sorted(shown)
        recent = officer.get("/staff/queue?age=61%2B")
        assert "0 cases match" in recent.text
        bad = officer.get("/staff/queue?status=lost&age=old")
        assert bad.status_code == 422
        assert "Choose a valid status" in bad.text
        assert "Choose a valid age" in bad.text
    finally:
        app.extensions["carepath.registry"].close()


def test_an_officer_assigns_requests_information_accepts_and_approves_a_case(office):
    app, _applicants, _env = office
    officer = staff_client(app, "officer")
    registry = app.extensions["carepath.registry"]
    holder = references(officer.get("/staff/queue?status=application_submitted").text)[0]
    path = f"/staff/cases/{holder}"

    page = officer.get(path)
    assert page.status_code == 200
    assert "Maria Luz" in page.text  # the applicant's answers are on the case page
    assert "Registration submitted" in text_of(page.text, "timeline")
    assigned = officer.post(
        f"{path}/actions/assign", data={**form_of(page.text, "/assign"), "assignee": "me"}
    )
    assert assigned.status_code == 302
    assert "done=assign" in assigned.headers["Location"]
    page = officer.get(assigned.headers["Location"])
    assert text_of(page.text, "assigned-to") != "No one"
    assert "Assigned" in text_of(page.text, "timeline")

    asked = officer.post(
        f"{path}/actions/request_information",
        data={**form_of(page.text, "/request_information"), "message": "Send your pay slips."},
    )
    assert asked.status_code == 302
    page = officer.get(asked.headers["Location"])
    assert "Send your pay slips." in text_of(page.text, "requests")
    accepted = officer.post(f"{path}/actions/accept", data=form_of(page.text, "/accept"))
    assert accepted.status_code == 302
    page = officer.get(accepted.headers["Location"])
    approved = officer.post(
        f"{path}/actions/approve", data={**form_of(page.text, "/approve"), "note": ""}
    )
    assert approved.status_code == 302

    case = registry.get_case(registry.find_case(holder))
    assert case.status is CaseStatus.APPROVED
    assert len(case.requests) == 1
    caught_up(app)
    queue = officer.get("/staff/queue?status=approved&assigned=me")
    assert references(queue.text) == [holder]


def test_a_stale_action_changes_nothing_and_a_bad_one_names_the_field(office):
    app, _, _ = office
    first, second = staff_client(app, "officer"), staff_client(app, "officer")
    registry = app.extensions["carepath.registry"]
    holder = references(first.get("/staff/queue?status=application_submitted").text)[0]
    path = f"/staff/cases/{holder}"
    seen_by_first = first.get(path).text
    seen_by_second = second.get(path).text
    done = second.post(f"{path}/actions/accept", data=form_of(seen_by_second, "/accept"))
    assert done.status_code == 302
    version = registry.get_case(registry.find_case(holder)).version

    stale = first.post(
        f"{path}/actions/return_incomplete",
        data={**form_of(seen_by_first, "/return_incomplete"), "reasons": "documents_missing"},
    )

    assert stale.status_code == 409
    assert "Someone else changed this case" in stale.text
    assert registry.get_case(registry.find_case(holder)).version == version
    fresh = first.get(path).text
    no_reason = first.post(f"{path}/actions/refuse", data={**form_of(fresh, "/refuse"), "note": ""})
    assert no_reason.status_code == 422
    assert "Choose at least one reason" in no_reason.text
    other = first.post(
        f"{path}/actions/refuse", data={**form_of(fresh, "/refuse"), "reasons": "other"}
    )
    assert other.status_code == 422
    assert "explain the other reason" in other.text
    assert registry.get_case(registry.find_case(holder)).version == version
    assert first.get("/staff/cases/NOPE-NOPE-0").status_code == 404
    assert first.post(f"{path}/actions/delete", data=form_of(fresh, "/refuse")).status_code == 404


def test_returning_a_holder_as_incomplete_invites_the_next_person_waiting(office):
    app, _applicants, _env = office
    officer = staff_client(app, "officer")
    holder = references(officer.get("/staff/queue?status=application_submitted&sort=oldest").text)[
        0
    ]
    waiting = references(officer.get("/staff/queue?state=waitlisted&sort=oldest").text)[0]
    page = officer.get(f"/staff/cases/{holder}").text

    returned = officer.post(
        f"/staff/cases/{holder}/actions/return_incomplete",
        data={**form_of(page, "/return_incomplete"), "reasons": ["documents_missing"]},
    )
    assert returned.status_code == 302
    caught_up(app)

    board = officer.get("/staff/board").text
    assert cell(board, "returned") == 1
    assert cell(board, "granted") == 1  # the first person waiting, invited
    assert cell(board, "waitlisted") == 1
    assert "Place granted" in text_of(officer.get(f"/staff/cases/{waiting}").text, "timeline")


def test_a_bulk_assign_names_the_case_that_changed_meanwhile(office):
    app, _, _ = office
    officer = staff_client(app, "officer")
    other = staff_client(app, "officer")
    registry = app.extensions["carepath.registry"]
    queue = officer.get("/staff/queue").text
    picked = re.findall(r'name="case" value="([0-9a-f]{32}:[0-9]+)"', queue)
    assert len(picked) == 4
    changed = references(queue)[1]
    page = other.get(f"/staff/cases/{changed}").text
    assert (
        other.post(
            f"/staff/cases/{changed}/actions/assign",
            data={**form_of(page, "/assign"), "assignee": "me"},
        ).status_code
        == 302
    )

    result = officer.post(
        "/staff/queue/assign",
        data={**form_of(queue, "/staff/queue/assign"), "case": picked, "assignee": "me"},
    )

    assert result.status_code == 200
    assert "3 cases assigned" in text_of(result.text, "assigned")
    assert changed in text_of(result.text, "skipped")
    assigned = [registry.get_case(registry.find_case(r)).assigned_to for r in references(queue)]
    assert assigned.count(assigned[0]) == 3
    nothing = officer.post("/staff/queue/assign", data={**form_of(queue, "/staff/queue/assign")})
    assert nothing.status_code == 422
    assert "Choose at least one case" in nothing.text


def test_the_csv_export_streams_the_filtered_queue(office):
    app, _, _ = office
    officer = staff_client(app, "auditor")

    export = officer.get("/staff/queue.csv?state=waitlisted")

    assert export.status_code == 200
    assert export.mimetype == "text/csv"
    assert "attachment" in export.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert len(rows) == 2
    assert {r["allocation_state"] for r in rows} == {"waitlisted"}
    assert "Santos" not in export.get_data(as_text=True)  # no personal data in the export
    assert officer.get("/staff/queue.csv?status=lost").status_code == 422


def test_an_auditor_reads_everything_and_changes_nothing(office):
    app, _, _ = office
    auditor = staff_client(app, "auditor")
    registry = app.extensions["carepath.registry"]
    holder = references(auditor.get("/staff/queue").text)[0]
    page = auditor.get(f"/staff/cases/{holder}")
    assert page.status_code == 200
    assert 'action="/staff/cases/' not in page.text  # no action forms for a reader
    head = registry.recorder.max_notification_id()
    token = re.search(r'name="staff_csrf" value="([^"]+)"', page.text)
    assert token is not None

    refused = auditor.post(
        f"/staff/cases/{holder}/actions/accept",
        data={"staff_csrf": token.group(1), "idempotency_key": "k" * 24, "version": "4"},
    )

    assert refused.status_code == 403
    assert registry.recorder.max_notification_id() == head
