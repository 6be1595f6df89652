"""web.request_body: what a response left of its request body is read before the connection is
kept (the gunicorn side is tests/integration/test_unread_bodies.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from io import BytesIO
from typing import Any

from werkzeug.test import Client

from web.request_body import DrainBody, drain

SIZE = 300_000


def refuse(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("401 UNAUTHORIZED", [("Content-Type", "text/plain")])
    return [b"sign in first"]


def read_some(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    environ["wsgi.input"].read(1000)
    start_response("409 CONFLICT", [("Content-Type", "text/plain")])
    return [b"continue from 1000"]


def put(app: Any, stream: BytesIO) -> Any:
    headers = {"Content-Length": str(SIZE)}
    return Client(app).put("/", input_stream=stream, headers=headers, buffered=True)


def test_a_body_the_app_did_not_read_is_read_after_the_answer() -> None:
    stream = BytesIO(b"x" * SIZE)
    answer = put(DrainBody(refuse, limit=1 << 20), stream)
    assert answer.status_code == 401
    assert answer.get_data() == b"sign in first"
    assert stream.tell() == SIZE


def test_the_rest_of_a_partly_read_body_is_read() -> None:
    stream = BytesIO(b"x" * SIZE)
    answer = put(DrainBody(read_some, limit=1 << 20), stream)
    assert answer.status_code == 409
    assert stream.tell() == SIZE


def test_no_more_than_the_limit_is_read() -> None:
    stream = BytesIO(b"x" * SIZE)
    put(DrainBody(refuse, limit=100_000), stream)
    assert stream.tell() == 100_000


class Reset:
    def read(self, size: int = -1) -> bytes:
        raise ConnectionResetError("the client went away")


def test_a_client_gone_mid_body_is_no_error() -> None:
    assert drain(Reset(), limit=1 << 20) == 0
    assert drain(BytesIO(b"abc"), limit=1 << 20) == 3


def test_a_chunked_body_without_a_length_is_read_too() -> None:
    stream = BytesIO(b"y" * SIZE)
    environ = {"wsgi.input": stream, "REQUEST_METHOD": "PUT", "HTTP_TRANSFER_ENCODING": "chunked"}
    answer = DrainBody(refuse, limit=1 << 20)(environ, lambda status, headers: None)
    assert b"".join(answer) == b"sign in first"
    answer.close()
    assert stream.tell() == SIZE
