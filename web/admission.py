"""Admission control: a bounded amount of work in flight per process, and a calm 503 beyond it.

A request that cannot get a slot within a short wait is answered at once with 503 and
Retry-After (HTML: a page that reloads itself; JSON: an error body) instead of queueing without
bound; nothing it carried was written, and its idempotency key makes the retry safe. Writes are
also refused while the group committer's queue is deeper than a few batches, since every one of
them would wait behind it.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, current_app, g, render_template, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from web.errors import wants_json

EXEMPT = {"static", "health.healthz"}


class Admission:
    def __init__(self, limit: int, wait_seconds: float, retry_after: int) -> None:
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.retry_after = retry_after
        self._slots = threading.BoundedSemaphore(limit)
        self.refused = 0

    def enter(self) -> bool:
        return self._slots.acquire(timeout=self.wait_seconds)

    def leave(self) -> None:
        self._slots.release()


def _busy() -> Response:
    admission: Admission = current_app.extensions["carepath.admission"]
    admission.refused += 1
    message = _("The service is busy. Your saved answers are safe. Try again in a few seconds.")
    if wants_json():
        from flask import jsonify

        response = jsonify({"error": message, "code": "Busy"})
    else:
        response = Response(
            render_template(
                "busy.html",
                message=message,
                seconds=admission.retry_after,
                reload=request.method == "GET",
            ),
            mimetype="text/html",
        )
    response.status_code = 503
    response.headers["Retry-After"] = str(admission.retry_after)
    return response


def _admit() -> Any:
    if request.endpoint in EXEMPT:
        return None
    admission: Admission = current_app.extensions["carepath.admission"]
    registry = current_app.extensions["carepath.registry"]
    committer = registry.group_commit
    if (
        request.method != "GET"
        and committer is not None
        and committer.queued > 4 * committer.max_batch
    ):
        return _busy()
    if not admission.enter():
        return _busy()
    g.admitted = True
    return None


def _release(_: BaseException | None) -> None:
    if g.pop("admitted", False):
        current_app.extensions["carepath.admission"].leave()


def init_app(app: Flask, *, limit: int, wait_seconds: float, retry_after: int) -> None:
    app.extensions["carepath.admission"] = Admission(limit, wait_seconds, retry_after)
    app.before_request(_admit)
    app.teardown_request(_release)
