"""A stale save never overwrites newer answers (issue 11, must-hold 3), at the Registry: whatever
two tabs do, in any order (open the step, save it, repeat a click), a save is taken only when it
was made from the version that is current, and the answers stored are always those of the last
save that was taken."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import StaleVersion
from domain.registry import Registry
from tests.conftest import SECRET, about_you

# One click: which tab (0 or 1), and what it does: open (reload the step), save a new email,
# or resend its last save (the browser's back button, a double click, a retry).
ACTIONS = st.lists(
    st.tuples(st.integers(0, 1), st.sampled_from(["open", "save", "resend"])),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=ACTIONS)
def test_whatever_two_tabs_do_only_saves_from_the_current_version_are_taken(actions):
    registry = Registry(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, secret=SECRET)
    try:
        registry.define_intake(
            code="tt", name="T", stream="outside", capacity=5, policy="first_come", actor="t"
        )
        registry.open_intake("tt", actor="t")
        case_id = registry.register("tt", about_you(1), language="en", idempotency_key="r").case_id
        seen = [1, 1]  # the version each tab's page was opened at
        last_post: list[tuple[int, str, str] | None] = [None, None]
        taken_email = None  # the email of the last save the Registry took
        counter = itertools.count()
        for tab, action in actions:
            current = registry.get_case(case_id).version
            if action == "open":
                seen[tab] = current
                continue
            if action == "save":
                n = next(counter)
                last_post[tab] = (seen[tab], f"t{tab}-{n}@example.org", f"key-{n}")
            post = last_post[tab]
            if post is None:
                continue
            version, email, key = post
            try:
                outcome = registry.save_step(
                    case_id,
                    "contact",
                    {"email": email},
                    expected_version=version,
                    language="en",
                    idempotency_key=key,
                )
            except StaleVersion as stale:
                refused_at = stale.actual
                outcome = None
            if outcome is None:
                assert version != current  # refused only when made from another version
                assert refused_at == current
            else:
                # taken: made from the current version, or the replay of a save already taken
                assert version == current or outcome.version == version + 1
                if version == current:
                    taken_email = email
                    seen[tab] = outcome.version  # the tab now shows what it saved
            stored = registry.get_case(case_id).answers.get("contact", {}).get("email")
            assert stored == taken_email
    finally:
        registry.close()
