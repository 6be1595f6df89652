"""Words officers read for the codes the domain and the read models store, in both languages."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

STATUS: dict[str, Any] = {
    "draft": _l("Draft"),
    "submitted": _l("Submitted"),
    "withdrawn": _l("Withdrawn"),
    "application_submitted": _l("Application submitted: completeness check due"),
    "accepted": _l("Accepted for processing"),
    "returned": _l("Returned as incomplete"),
    "approved": _l("Approved"),
    "refused": _l("Refused"),
}

ALLOCATION: dict[str, Any] = {
    "entered": _l("Entered in the draw"),
    "granted": _l("Invited (offer open)"),
    "accepted": _l("Place kept"),
    "waitlisted": _l("Waitlisted"),
    "not_selected": _l("Not selected"),
    "withdrawn": _l("Withdrawn"),
    "expired": _l("Offer expired"),
    "returned_incomplete": _l("Place released (incomplete)"),
}

REASONS: dict[str, Any] = {
    "language_below_minimum": _l("Language test result below the minimum"),
    "work_experience_insufficient": _l("Not enough recent care work"),
    "education_not_equivalent": _l("Education not equivalent to the requirement"),
    "job_offer_not_genuine": _l("Job offer not genuine"),
    "inadmissible": _l("Inadmissible"),
    "misrepresentation": _l("Misrepresentation"),
    "documents_missing": _l("Required documents missing"),
    "form_incomplete": _l("Application form incomplete"),
    "fee_not_paid": _l("Fee not paid"),
    "identity_unclear": _l("Identity could not be established"),
    "other": _l("Other (explained in the note)"),
}

TIMELINE: dict[str, Any] = {
    "registered": _l("Registered (about you)"),
    "step_saved": _l("Step saved"),
    "submitted": _l("Registration submitted"),
    "withdrawn": _l("Withdrawn by the applicant"),
    "assigned": _l("Assigned"),
    "information_requested": _l("Information requested"),
    "information_provided": _l("Information provided by the applicant"),
    "accepted": _l("Accepted for processing"),
    "returned": _l("Returned as incomplete"),
    "approved": _l("Approved"),
    "refused": _l("Refused"),
    "entered": _l("Entered in the draw"),
    "granted": _l("Place granted"),
    "invited": _l("Invited, with a deadline"),
    "waitlisted": _l("Put on the waitlist"),
    "not_selected": _l("Not selected"),
    "left_waitlist": _l("Left the waitlist"),
    "released": _l("Place released"),
    "taken_up": _l("Place kept: offer taken up"),
    "details_saved": _l("Application details saved"),
    "document_added": _l("Document uploaded"),
    "document_removed": _l("Document removed"),
    "document_scanned": _l("Document scanned for viruses"),
    "application_submitted": _l("Application submitted"),
}

ACTIONS: dict[str, Any] = {
    "assign": _l("Assigned"),
    "request_information": _l("Request for information sent"),
    "accept": _l("Accepted for processing"),
    "return_incomplete": _l("Returned as incomplete: the place goes to the next person waiting"),
    "approve": _l("Approved"),
    "refuse": _l("Refused"),
}

METRICS: dict[str, Any] = {
    "registered": _l("Registered"),
    "submitted": _l("Submitted"),
    "application_submitted": _l("Applications submitted"),
    "entered": _l("In the draw"),
    "granted": _l("Invited (offers open)"),
    "accepted": _l("Accepted for processing"),
    "waitlisted": _l("Waitlisted"),
    "expired": _l("Offers expired"),
    "withdrawn": _l("Withdrawn"),
    "returned": _l("Returned as incomplete"),
    "decided": _l("Decided"),
    "approved": _l("Approved"),
    "refused": _l("Refused"),
    "not_selected": _l("Not selected"),
    "places_left": _l("Places left"),
}

# Documents on the officer's case page: the virus scan's state, and where each stands in its history.
SCAN: dict[str, Any] = {
    "clean": _l("Scanned: no virus found"),
    "not_scanned": _l("Not scanned (no scanner configured)"),
    "pending": _l("Waiting for the virus scan"),
    "infected": _l("Virus found: cannot be opened"),
}

DOCUMENT_STATE: dict[str, Any] = {
    "current": _l("Current"),
    "replaced": _l("Replaced"),
    "removed": _l("Removed by the applicant"),
}


def label(table: dict[str, Any], code: str | None) -> str:
    """The words for a code, or the code itself if none are known (never a blank cell)."""
    if code is None:
        return ""
    return str(table.get(code, code))
