"""The text of every email, in English and French, plain text and HTML (no Flask: the worker
composes them, outside any request).

The strings are in the web catalogue (web/translations), read with the standard library's gettext,
so they are translated like every page. A letter is a subject, paragraphs and at most one link.
"""

from __future__ import annotations

import gettext
import html
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from domain.identity import recovery_token
from domain.mailer import message_id_header
from domain.notifications import Kind, Message
from domain.values import LANGUAGES, CaseView

TRANSLATIONS = Path(__file__).parent / "translations"
DATE_PATTERNS = {
    "en": "MMMM d, y 'at' h:mm a zzzz",
    "fr": "d MMMM y 'à' HH 'h' mm zzzz",
}
LOCALES = {"en": "en_CA", "fr": "fr_CA"}


def _l(text: str) -> str:
    """Marks a string for the catalogue; it is translated when a letter is composed."""
    return text


SIGN_IN = _l("Sign in")
AUTOMATIC = _l(
    "This email was sent automatically by carepath. Please do not reply: sign in to see your "
    "application and its messages."
)
SUBJECTS: dict[str, str] = {
    Kind.REGISTRATION: _l("Your reference for %(intake)s: %(reference)s"),
    Kind.SUBMISSION: _l("We received your registration for %(intake)s"),
    Kind.INVITATION: _l("A place is offered to you in %(intake)s"),
    Kind.WAITLISTED: _l("You are on the waitlist for %(intake)s"),
    Kind.NOT_SELECTED: _l("Your registration for %(intake)s: no place this time"),
    Kind.OFFER_EXPIRED: _l("The place offered to you in %(intake)s has expired"),
    Kind.INFORMATION_REQUESTED: _l("An officer needs more information about your application"),
    Kind.DECISION: _l("A decision on your application for %(intake)s"),
    Kind.RECOVERY: _l("Set a new access code for %(intake)s"),
    Kind.MOVED_UP: _l("You moved up the waitlist for %(intake)s: number %(position)s"),
}
NEXT_IN_LINE_SUBJECT = _l("You are next in line for a place in %(intake)s")
REMINDER_SUBJECTS = {
    7: _l("Reminder: 7 days left to send your application for %(intake)s"),
    1: _l("Reminder: 1 day left to send your application for %(intake)s"),
}
BODIES: dict[str, tuple[str, ...]] = {
    Kind.REGISTRATION: (
        _l("Your registration for %(intake)s is saved. Your reference is %(reference)s."),
        _l(
            "You need this reference and your access code to sign in. For your security, we "
            "never send your access code by email. If you lose it, choose “Forgot your access "
            "code?” on the sign-in page."
        ),
    ),
    Kind.SUBMISSION: (
        _l("We received your registration for %(intake)s (reference %(reference)s)."),
        _l("We will email you when a place is offered to you, or if one cannot be."),
    ),
    Kind.INVITATION: (
        _l("Good news: a place in %(intake)s is offered to you (reference %(reference)s)."),
        _l(
            "To keep it, sign in and send your application with your documents by %(deadline)s. "
            "After that, the place goes to the next person on the waitlist."
        ),
    ),
    Kind.WAITLISTED: (
        _l(
            "Every place in %(intake)s is given for now. Your registration (reference "
            "%(reference)s) is on the waitlist at number %(position)s."
        ),
        _l("If a place comes free for you, we will offer it to you by email right away."),
    ),
    Kind.MOVED_UP: (
        _l(
            "People ahead of you have left the waitlist for %(intake)s: your registration "
            "(reference %(reference)s) is now number %(position)s."
        ),
        _l("If a place comes free for you, we will offer it to you by email right away."),
    ),
    Kind.OFFER_EXPIRED: (
        _l(
            "The deadline to send your application for %(intake)s (reference %(reference)s) has "
            "passed, so the place offered to you has gone to the next person on the waitlist."
        ),
    ),
    Kind.REMINDER: (
        _l(
            "The place offered to you in %(intake)s (reference %(reference)s) is kept for you "
            "until %(deadline)s."
        ),
        _l(
            "Sign in and send your application with your documents before then; after that, the "
            "place goes to the next person on the waitlist."
        ),
    ),
    Kind.INFORMATION_REQUESTED: (
        _l("An officer reviewing your application for %(intake)s (reference %(reference)s) asks:"),
        "%(request)s",
        _l("Sign in to answer and to add documents."),
    ),
    Kind.RECOVERY: (
        _l(
            "Someone asked to set a new access code for your registration for %(intake)s "
            "(reference %(reference)s). If it was you, follow the link below before "
            "%(expires)s. It works only once."
        ),
        _l("If you did not ask for this, ignore this email: your access code stays as it is."),
    ),
}
NOT_SELECTED: dict[str, str] = {
    "not_drawn": _l(
        "Your registration for %(intake)s (reference %(reference)s) was entered in the draw, "
        "but it was not drawn: every place and every spot on the waitlist went to entries drawn "
        "before yours."
    ),
    "waitlist_full": _l(
        "Every place in %(intake)s is given and the waitlist is full, so no place can be "
        "offered for your registration (reference %(reference)s)."
    ),
    "late": _l(
        "Your registration for %(intake)s (reference %(reference)s) was submitted after the "
        "intake closed, so it could not be considered."
    ),
}
DECISIONS: dict[str, str] = {
    "approved": _l("Your application for %(intake)s (reference %(reference)s) is approved."),
    "refused": _l("Your application for %(intake)s (reference %(reference)s) is refused."),
}
NEXT_IN_LINE = _l(
    "People ahead of you have left the waitlist for %(intake)s: your registration (reference "
    "%(reference)s) is now first on it, so the next place that comes free is offered to you."
)
SEE_DECISION = _l("Sign in to read the decision and what happens next.")
RECOVERY_LINK = _l("Set a new access code")


class Letters:
    """Composes the email of a Message for one case (the worker's `compose`)."""

    def __init__(
        self,
        *,
        public_url: str,
        sender: str,
        recovery_key: bytes,
        message_domain: str,
        translations: Path = TRANSLATIONS,
    ) -> None:
        self.public_url = public_url.rstrip("/")
        self.sender = sender
        self.recovery_key = recovery_key
        self.message_domain = message_domain
        self._catalogues = {
            language: gettext.translation(
                "messages", localedir=str(translations), languages=[language], fallback=True
            )
            for language in LANGUAGES
        }

    def __call__(self, message: Message, case: CaseView, recipient: str) -> EmailMessage:
        language = str(message.facts.get("language") or case.language)
        if language not in LANGUAGES:
            language = LANGUAGES[0]
        t = self._catalogues[language].gettext
        values = self._values(message, case, language)
        if message.kind is Kind.REMINDER:
            subject_id = REMINDER_SUBJECTS[int(message.facts["days"])]
        elif message.kind is Kind.MOVED_UP and values["position"] == 1:
            subject_id = NEXT_IN_LINE_SUBJECT
        else:
            subject_id = SUBJECTS[message.kind]
        paragraphs = [
            t(p) % values if p != "%(request)s" else values["request"] for p in self._body(message)
        ]
        link_label, link = self._link(message, case, language)
        letter = EmailMessage()
        letter["Subject"] = t(subject_id) % values
        letter["From"] = self.sender
        letter["To"] = recipient
        letter["Message-ID"] = message_id_header(message.id, self.message_domain)
        letter["Date"] = formatdate(usegmt=True)
        letter["X-Carepath-Kind"] = message.kind.value
        text = "\n\n".join([*paragraphs, f"{t(link_label)}: {link}", t(AUTOMATIC)])
        letter.set_content(text + "\n")
        html_paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        letter.add_alternative(
            f'<!DOCTYPE html><html lang="{language}"><body>{html_paragraphs}'
            f'<p><a href="{html.escape(link)}">{html.escape(t(link_label))}</a></p>'
            f"<p><small>{html.escape(t(AUTOMATIC))}</small></p></body></html>\n",
            subtype="html",
        )
        letter["Content-Language"] = language  # after the parts: set_content drops Content-*
        return letter

    def _body(self, message: Message) -> tuple[str, ...]:
        if message.kind is Kind.NOT_SELECTED:
            return (NOT_SELECTED[str(message.facts["reason"])],)
        if message.kind is Kind.DECISION:
            return (DECISIONS[str(message.facts["outcome"])], SEE_DECISION)
        if message.kind is Kind.MOVED_UP and message.facts.get("position") == 1:
            return (NEXT_IN_LINE, BODIES[Kind.MOVED_UP][1])
        return BODIES[message.kind]

    def _values(self, message: Message, case: CaseView, language: str) -> dict[str, Any]:
        values: dict[str, Any] = {
            "intake": case.intake.name,
            "reference": case.reference,
            # Waitlisted messages recorded before positions were kept give only the rank.
            "position": message.facts.get("position", message.facts.get("rank", "")),
            "request": str(message.facts.get("message", "")),
        }
        for name, fact in (("deadline", "deadline"), ("expires", "expires_at")):
            if fact in message.facts:
                moment = datetime.fromisoformat(message.facts[fact])
                values[name] = _when(moment, language, case.intake.time_zone)
        return values

    def _link(self, message: Message, case: CaseView, language: str) -> tuple[str, str]:
        if message.kind is Kind.RECOVERY:
            token = recovery_token(self.recovery_key, case.id, str(message.facts["request_id"]))
            return RECOVERY_LINK, f"{self.public_url}/recover/{token}?lang={language}"
        return SIGN_IN, f"{self.public_url}/sign-in?lang={language}"


def _when(moment: datetime, language: str, zone: str) -> str:
    """A time in the intake's zone, the zone named."""
    return format_datetime(
        moment, DATE_PATTERNS[language], tzinfo=ZoneInfo(zone), locale=LOCALES[language]
    )
