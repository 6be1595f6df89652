"""Every request body is read to its end before its connection waits for the next request.

gunicorn's threaded worker (gthread, what `carepath web` runs) hands a kept-alive connection to
a thread as soon as its socket is readable. When a response went out without the app reading
the whole body (a replayed upload answered from its first outcome, a 401, 409, 413, 423 or 503
refusal), the unread rest of the body makes the socket readable: a thread takes the connection,
discards the rest, and then blocks in recv() for the next request, with no timeout, for as long
as the client keeps the connection open and idle (benoitc/gunicorn#3301, open in 23.0). A
handful of such clients hold every thread of a worker, and every other connection of that worker
waits. Under the SIGKILL drill of 200 uploads, retried uploads answered by replay did exactly
that and left other applicants without an answer for minutes.

Reading the rest here, inside the request, before gunicorn takes the connection back, leaves
nothing on the socket: the connection waits in gunicorn's selector, as every idle keep-alive
connection does, and is closed after the keep-alive timeout. No middleware library does this
(werkzeug's ProxyFix and friends do not touch the body), so it is a few lines here.

A body larger than `limit` (more than any route accepts) is read only up to it: gunicorn drains
the rest as before. A deployment with a buffering proxy in front (nginx) never meets the bug.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.wsgi import ClosingIterator

CHUNK = 64 * 1024

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def drain(stream: Any, limit: int) -> int:
    """Read and discard what is left of a request body, up to `limit` bytes; how many were read.

    A client gone mid-body is no error here: the response is already on its way, or lost.
    """
    read = 0
    try:
        while read < limit and (chunk := stream.read(min(CHUNK, limit - read))):
            read += len(chunk)
    except (OSError, ValueError):  # a reset connection; gunicorn's NoMoreData is an OSError
        pass
    return read


class DrainBody:
    """WSGI middleware: after the response has been written, read the rest of the body."""

    def __init__(self, app: WSGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        stream = environ.get("wsgi.input")
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if stream is None or (environ.get("CONTENT_LENGTH", "") in ("", "0") and not chunked):
            return self.app(environ, start_response)  # no body: nothing to read (most GETs)
        answer = self.app(environ, start_response)
        return ClosingIterator(answer, [lambda: drain(stream, self.limit)])


def init_app(app: Flask, limit: int) -> None:
    """Wrap the app's WSGI callable; outermost, so it runs after every other close."""
    app.wsgi_app = DrainBody(app.wsgi_app, limit)  # type: ignore[method-assign]
