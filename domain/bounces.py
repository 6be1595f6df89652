"""Delivery status notifications (RFC 3464): which of our messages bounced, and why.

A relay that accepted a message and later could not deliver it sends a report to the envelope
sender: a multipart/report whose message/delivery-status part has one block of fields per
recipient (Action, Status, Diagnostic-Code), followed by the original message or its headers,
which carry the Message-ID carepath gave it (`<message-id@domain>`, domain/mailer.py). The standard
library's email parser reads all of it; what is left here is picking out the fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from email.parser import HeaderParser
from uuid import UUID

from domain.errors import CarepathError

MESSAGE_ID = re.compile(
    r"<([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})@[^>]+>", re.IGNORECASE
)


class NotADeliveryReport(CarepathError):
    """Raised when the input is not a delivery status notification naming one of our messages."""


@dataclass(frozen=True)
class DeliveryReport:
    message_id: UUID  # the id of our Message, read from the original's Message-ID
    action: str  # "failed", "delayed", "delivered", "relayed" or "expanded" (RFC 3464 2.3.3)
    status: str  # e.g. "5.1.1"
    diagnostic: str  # the Diagnostic-Code's text, "" when none is given
    reported_by: str  # the Reporting-MTA, "" when none is given

    @property
    def bounced(self) -> bool:
        return self.action == "failed"


def read_report(raw: bytes) -> DeliveryReport:
    """The report in `raw` (one email, as received). A report for several recipients of one
    message is read as failed when any recipient failed (carepath sends each message to one)."""
    report = message_from_bytes(raw, policy=policy.compat32)
    status_part = _part(report, "message/delivery-status")
    if status_part is None:
        raise NotADeliveryReport(
            "not a delivery status notification (RFC 3464): it has no message/delivery-status part"
        )
    blocks = _field_blocks(status_part)
    per_message, recipients = (blocks[0], blocks[1:]) if len(blocks) > 1 else ({}, blocks)
    if not recipients:
        raise NotADeliveryReport("the delivery status part names no recipient")
    chosen = next((r for r in recipients if _action(r) == "failed"), recipients[0])
    return DeliveryReport(
        message_id=_original_id(report),
        action=_action(chosen),
        status=chosen.get("status", "").strip(),
        diagnostic=_after_type(chosen.get("diagnostic-code", "")),
        reported_by=_after_type(per_message.get("reporting-mta", "")),
    )


def _part(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _field_blocks(part: Message) -> list[dict[str, str]]:
    """The part's header blocks (the parser gives message/delivery-status as a list of them)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [
            {k.lower(): " ".join(str(v).split()) for k, v in block.items()}
            for block in payload
            if isinstance(block, Message)
        ]
    text = payload if isinstance(payload, str) else ""
    blocks = []
    for chunk in re.split(r"\r?\n\s*\r?\n", text.strip()):
        parsed = HeaderParser().parsestr(chunk + "\n")
        blocks.append({k.lower(): " ".join(str(v).split()) for k, v in parsed.items()})
    return [b for b in blocks if b]


def _action(fields: dict[str, str]) -> str:
    return fields.get("action", "").strip().lower()


def _after_type(value: str) -> str:
    """ "smtp; 550 5.1.1 no such mailbox" -> "550 5.1.1 no such mailbox" (RFC 3464 2.1.2)."""
    kind, separator, rest = value.partition(";")
    return rest.strip() if separator else kind.strip()


def _original_id(report: Message) -> UUID:
    original = _part(report, "message/rfc822")
    headers: Message | None = None
    if original is not None:
        payload = original.get_payload()
        first = payload[0] if isinstance(payload, list) and payload else None
        headers = first if isinstance(first, Message) else None
    if headers is None:
        rfc822_headers = _part(report, "text/rfc822-headers")
        if rfc822_headers is not None:
            text = rfc822_headers.get_payload(decode=True)
            raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
            headers = HeaderParser().parsestr(raw)
    found = MESSAGE_ID.fullmatch(str(headers.get("Message-ID", "")).strip()) if headers else None
    if found is None:
        raise NotADeliveryReport(
            "the report does not name a carepath message: the original's Message-ID is missing "
            "or is not <message-id@domain>"
        )
    return UUID(found.group(1))
