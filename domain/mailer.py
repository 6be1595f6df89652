"""Delivery of recorded Messages: an SMTP server or an outbox folder, retried with back-off.

The Sender reads the Notifications' own log to learn which messages wait, sends each one and
records what happened on the Message right after it (not per batch), so a crash repeats at most
the message in flight. That one window cannot be closed from here: between the SMTP server's 250
and the Delivered event being committed, a crash makes the next run send the message again. It
carries the same Message-ID both times (derived from the message's id), so a receiver that drops
repeated Message-IDs shows it once.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.errors import CaseNotFound, DeliveryFailed
from domain.notifications import Message, Notifications
from domain.registry import Registry
from domain.values import CaseView

# Waits after the 1st, 2nd, ... temporary failure; one more failure after the last: Abandoned.
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
LOG_BATCH = 500
SMTP_TIMEOUT = 30.0
_TOPICS = tuple(
    get_topic(cls)
    for cls in (
        Message.Recorded,
        Message.Delivered,
        Message.Failed,
        Message.Rejected,
        Message.Abandoned,
        Message.Requeued,
    )
)

Compose = Callable[[Message, CaseView, str], EmailMessage]  # (message, case, recipient)


class Transport(Protocol):
    """Hands one email over; raises DeliveryFailed (permanent or not) when it cannot."""

    name: str

    def send(self, letter: EmailMessage, message_id: UUID) -> None: ...

    def close(self) -> None: ...


def message_id_header(message_id: UUID, domain: str) -> str:
    """The Message-ID of a message: the same on every attempt, so a resend can be recognised."""
    return f"<{message_id}@{domain}>"


class SmtpTransport:
    """smtp://user:pass@host:port (?starttls=1), or smtps:// for TLS from the first byte."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        implicit_tls: bool = False,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = SMTP_TIMEOUT,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.implicit_tls, self.starttls = implicit_tls, starttls
        self.username, self.password = username, password
        self.timeout = timeout
        self.tls_context = tls_context
        self._session: smtplib.SMTP | None = None

    @classmethod
    def from_url(cls, url: str) -> SmtpTransport:
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError(f"CAREPATH_SMTP_URL must look like smtp://host:25, not {url!r}")
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["0"])[-1].lower() in {"1", "y", "yes", "true", "on"}
        implicit = parts.scheme == "smtps"
        return cls(
            parts.hostname,
            parts.port or (465 if implicit else 25),
            implicit_tls=implicit,
            starttls=starttls and not implicit,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def send(self, letter: EmailMessage, message_id: UUID) -> None:
        try:
            session = self._session or self._connect()
            session.send_message(letter)
        except smtplib.SMTPRecipientsRefused as refused:
            self.close()
            codes = [code for code, _ in refused.recipients.values()]
            raise DeliveryFailed(
                f"recipient refused: {refused.recipients}",
                permanent=bool(codes) and all(code >= 500 for code in codes),
            ) from None
        except smtplib.SMTPDataError as answer:
            # The server read this message and answered: a 5xx is its final word on it.
            self.close()
            raise DeliveryFailed(
                f"{answer.smtp_code} {_text(answer.smtp_error)}",
                permanent=answer.smtp_code >= 500,
            ) from None
        except smtplib.SMTPResponseException as answer:
            # Refused before the message (login, STARTTLS required, our sender address): our
            # configuration, not this message, so it waits (with back-off) for a fix.
            self.close()
            raise DeliveryFailed(
                f"{answer.smtp_code} {_text(answer.smtp_error)}", permanent=False
            ) from None
        except (smtplib.SMTPException, OSError) as lost:
            self.close()
            raise DeliveryFailed(f"SMTP server unreachable: {lost}", permanent=False) from None

    def _connect(self) -> smtplib.SMTP:
        context = self.tls_context or ssl.create_default_context()
        session: smtplib.SMTP
        if self.implicit_tls:
            session = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            session = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls and not self.implicit_tls:
                session.starttls(context=context)
            if self.username:
                session.login(self.username, self.password or "")
        except BaseException:
            session.close()
            raise
        self._session = session
        return session

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                session.quit()
            except (smtplib.SMTPException, OSError):
                session.close()


class OutboxTransport:
    """The embedded default: one .eml file per message, named by its id, written atomically."""

    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, letter: EmailMessage, message_id: UUID) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            final = self.folder / f"{message_id}.eml"
            draft = self.folder / f".{message_id}.{os.getpid()}.tmp"
            with draft.open("wb") as out:
                out.write(letter.as_bytes())
                out.flush()
                os.fsync(out.fileno())
            os.replace(draft, final)  # a reader sees the whole file or none
            directory = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as failed:
            raise DeliveryFailed(f"outbox not writable: {failed}", permanent=False) from None

    def close(self) -> None:
        pass


def _text(error: bytes | str) -> str:
    return error.decode(errors="replace") if isinstance(error, bytes) else str(error)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Sender:
    """Sends the Messages that wait, oldest first, and records each outcome as it happens."""

    def __init__(
        self,
        notifications: Notifications,
        registry: Registry,
        compose: Compose,
        transport: Transport,
        *,
        backoff: tuple[timedelta, ...] = BACKOFF,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.notifications = notifications
        self.registry = registry
        self.compose = compose
        self.transport = transport
        self.backoff = backoff
        self.clock = clock
        self._read = 0  # position reached in the Notifications' own log
        self._due: dict[UUID, datetime] = {}  # messages not done -> when to (re)try

    def waiting(self) -> dict[UUID, datetime]:
        """Messages not yet delivered, rejected or abandoned, and when each is next tried."""
        self._read_log()
        return dict(self._due)

    def sweep(self, limit: int = 100) -> int:
        """Try every message due now (at most `limit`); returns how many were tried."""
        self._read_log()
        now = self.clock()
        due = sorted((at, id.hex, id) for id, at in self._due.items() if at <= now)[:limit]
        try:
            for _, _, id in due:
                self._deliver(id, now)
        finally:
            self.transport.close()
        return len(due)

    def _read_log(self) -> None:
        recorder = self.notifications.recorder
        mapper = self.notifications.mapper
        while True:
            found = recorder.select_notifications(
                start=self._read, limit=LOG_BATCH, topics=_TOPICS, inclusive_of_start=False
            )
            for notification in found:
                e = mapper.to_domain_event(notification)
                if isinstance(e, Message.Recorded | Message.Requeued):
                    self._due[e.originator_id] = e.timestamp
                elif isinstance(e, Message.Failed):
                    self._due[e.originator_id] = e.retry_at
                else:
                    self._due.pop(e.originator_id, None)
                self._read = notification.id
            if len(found) < LOG_BATCH:
                return

    def _deliver(self, id: UUID, now: datetime) -> None:
        message = self.notifications.get_message(id)
        if message.done:
            self._due.pop(id, None)
            return
        attempt = message.attempts + 1
        try:
            case = self.registry.get_case(message.case_id)
        except CaseNotFound:
            case = None
        recipient = str((case.answers.get("contact") or {}).get("email") or "") if case else ""
        if case is None or not recipient:
            message.rejected(attempt=attempt, error="no contact email on file")
        else:
            try:
                self.transport.send(self.compose(message, case, recipient), id)
            except DeliveryFailed as failure:
                if failure.permanent:
                    message.rejected(attempt=attempt, error=str(failure))
                elif attempt > len(self.backoff):
                    message.abandoned(attempt=attempt, error=str(failure))
                else:
                    retry_at = now + self.backoff[attempt - 1]
                    message.failed(attempt=attempt, error=str(failure), retry_at=retry_at)
            else:
                message.delivered(attempt=attempt, transport=self.transport.name)
        # Recorded at once, message by message: see the module's docstring for the one window.
        self.notifications.save(message)
        if message.done:
            self._due.pop(id, None)
        else:
            assert message.retry_at is not None
            self._due[id] = message.retry_at
