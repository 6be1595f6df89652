"""A real SMTP server for tests: aiosmtpd on a free loopback port, keeping what it accepts.

with SmtpSink() as sink:
    sink.url                      # smtp://127.0.0.1:<port>
    sink.answers.append("451 4.3.0 try again later")   # the next DATA gets this answer
    sink.messages                 # every accepted email, parsed
"""

from __future__ import annotations

import asyncio
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.sink.refused_recipients:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        with self.sink.lock:
            self.sink.attempts += 1
            if self.sink.answers:
                return self.sink.answers.pop(0)
            parsed = message_from_bytes(envelope.original_content, policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            self.sink.messages.append(parsed)
            self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 accepted"


class SmtpSink:
    """An SMTP server over TCP that accepts (or, as scripted, refuses) every message."""

    def __init__(self, *, delay: float = 0.0, **smtp_parameters: Any) -> None:
        self.port = free_port()
        self.delay = delay  # seconds before each answer to DATA: a slower server
        self.lock = threading.Lock()
        self.answers: list[str] = []  # scripted answers to the next DATA commands
        self.refused_recipients: set[str] = set()  # RCPT TO answered 550
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.attempts = 0
        self.controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, **smtp_parameters
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def by_message_id(self) -> dict[str, list[EmailMessage]]:
        found: dict[str, list[EmailMessage]] = {}
        with self.lock:
            for message in self.messages:
                found.setdefault(str(message["Message-ID"]), []).append(message)
        return found

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
