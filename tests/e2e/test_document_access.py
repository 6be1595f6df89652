"""No document route lets applicant B read, list, replace or remove applicant A's documents.

The walker reads the app's URL map and calls every rule whose path names documents or uploads,
with every method, as B, pointed at A's document ids and upload ids. An applicant route it has
no probes for fails the test, so a new document route is checked before the suite passes again.
Staff routes (under /staff and /api/v1/staff) get a generic probe here, that an applicant's
session opens nothing of A's; their roles are walked in tests/e2e/test_staff_roles.py.
"""

from __future__ import annotations

import base64
import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from bs4 import BeautifulSoup

from tests.stage_two_helpers import case_id_of, invited_client, pdf_bytes

A_MARKER = "Amara Okafor passport K77341209"
A_NAMES = ("amara-passport.pdf", "amara-police.pdf")
TUS = {"Tus-Resumable": "1.0.0"}
STAFF_PREFIXES = ("/staff", "/api/v1/staff")
# What an applicant's session may get from a staff route: a refusal or a way to the sign-in page.
STAFF_REFUSALS = {302, 303, 401, 403, 404, 405}


def key() -> str:
    return secrets.token_urlsafe(18)


def metadata(**pairs: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


def put(client: Any, item: str, content: bytes, name: str, **query: str) -> Any:
    return client.put(
        f"/api/v1/case/documents/items/{item}",
        data=content,
        query_string=query,
        headers={"Idempotency-Key": key(), "Upload-Filename": name},
    )


def tus(client: Any, item: str, content: bytes, name: str, *, upto: int | None = None) -> str:
    """A tus upload of `content`, sent up to byte `upto` (all of it by default): its URL."""
    created = client.post(
        "/api/v1/case/uploads",
        headers={
            **TUS,
            "Upload-Length": str(len(content)),
            "Upload-Metadata": metadata(item=item, filename=name),
        },
    )
    assert created.status_code == 201, created.text
    location: str = created.headers["Location"]
    sent = client.patch(
        location,
        data=content[:upto],
        headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert sent.status_code == 204, sent.text
    return location


@dataclass
class World:
    app: Any
    a: Any  # A's test client
    b: Any
    a_documents: tuple[str, ...]
    a_uploads: tuple[str, ...]  # URLs: one finished, one half sent
    a_secrets: tuple[str, ...]  # what of A's may never reach B

    @property
    def registry(self) -> Any:
        return self.app.extensions["carepath.registry"]

    def a_state(self) -> tuple[Any, ...]:
        case = self.registry.get_case(case_id_of(self.a))
        offsets = tuple(
            self.a.head(u, headers=TUS).headers.get("Upload-Offset") for u in self.a_uploads
        )
        return case.version, case.documents, offsets

    def b_form(self) -> dict[str, str]:
        """The hidden fields (CSRF token, a fresh idempotency key) of one of B's upload forms."""
        page = self.b.get("/application/complete")
        form = BeautifulSoup(page.text, "html.parser").find(
            "form", action="/application/documents/items/identity"
        )
        assert form is not None, "no upload form on B's overview"
        fields = {i["name"]: i.get("value", "") for i in form.find_all("input", type="hidden")}
        return {**fields, "idempotency_key": key()}


@pytest.fixture
def world(app: Any, sqlite_env: dict[str, str]) -> World:
    """A with two documents (one whole-file, one by tus) and a half-sent upload; B with one."""
    a, b = invited_client(app, sqlite_env, 1), invited_client(app, sqlite_env, 2)
    a_pdf, a_police = pdf_bytes(A_MARKER), pdf_bytes(A_MARKER + " police")
    first = put(a, "identity", a_pdf, A_NAMES[0])
    assert first.status_code == 201, first.text
    finished = tus(a, "police", a_police, A_NAMES[1])
    half = tus(a, "education", pdf_bytes(A_MARKER + " diploma"), "amara-diploma.pdf", upto=100)
    assert put(b, "identity", pdf_bytes("Bola passport"), "bola.pdf").status_code == 201
    case = app.extensions["carepath.registry"].get_case(case_id_of(a))
    digests = tuple(d.digest for d in case.documents)
    return World(
        app,
        a,
        b,
        a_documents=tuple(d.document_id for d in case.documents),
        a_uploads=(finished, half),
        a_secrets=(A_MARKER, *A_NAMES, "amara-diploma.pdf", *digests),
    )


# Probes: (world, path) -> the responses B got. Each points at A through the path it is given.


def _get(world: World, path: str) -> list[Any]:
    return [world.b.get(path), world.b.head(path, headers=TUS)]


def _tus_get(world: World, path: str) -> list[Any]:
    return [world.b.get(path), world.b.head(path, headers=TUS)]


def _delete(world: World, path: str) -> list[Any]:
    return [world.b.delete(path, headers={"Idempotency-Key": key()})]


def _put_document(world: World, path: str) -> list[Any]:
    item = path.rsplit("/", 1)[1]
    return [
        put(world.b, item, pdf_bytes("Bola again"), "b.pdf", replaces=document)
        for document in world.a_documents
    ]


def _options(world: World, path: str) -> list[Any]:
    return [world.b.options(path)]


def _tus_create(world: World, path: str) -> list[Any]:
    """B creates uploads that claim to replace A's documents, and finishes them."""
    answers = []
    content = pdf_bytes("Bola replacement")
    for document in world.a_documents:
        created = world.b.post(
            path,
            headers={
                **TUS,
                "Upload-Length": str(len(content)),
                "Upload-Metadata": metadata(item="identity", filename="b.pdf", replaces=document),
            },
        )
        answers.append(created)
        if created.status_code == 201:
            answers.append(
                world.b.patch(
                    created.headers["Location"],
                    data=content,
                    headers={
                        **TUS,
                        "Upload-Offset": "0",
                        "Content-Type": "application/offset+octet-stream",
                    },
                )
            )
    return answers


def _tus_append(world: World, path: str) -> list[Any]:
    headers = {**TUS, "Content-Type": "application/offset+octet-stream"}
    return [
        world.b.patch(path, data=b"%PDF-1.4 B", headers={**headers, "Upload-Offset": offset})
        for offset in ("0", "100")
    ]


def _html_upload(world: World, path: str) -> list[Any]:
    answers = []
    for document in world.a_documents:
        form = {**world.b_form(), "replaces": document}
        answers.append(
            world.b.post(
                path,
                data={**form, "file": (io.BytesIO(pdf_bytes("Bola html")), "b.pdf")},
                content_type="multipart/form-data",
            )
        )
    return answers


def _html_remove(world: World, path: str) -> list[Any]:
    return [world.b.post(path, data=world.b_form())]


WALKERS: dict[tuple[str, str], Callable[[World, str], list[Any]]] = {
    ("uploads_api.put_document", "PUT"): _put_document,
    ("uploads_api.list_documents", "GET"): _get,
    ("uploads_api.list_documents", "HEAD"): _get,
    ("uploads_api.get_document", "GET"): _get,
    ("uploads_api.get_document", "HEAD"): _get,
    ("uploads_api.delete_document", "DELETE"): _delete,
    ("uploads_api.tus_options", "OPTIONS"): _options,
    ("uploads_api.tus_create", "POST"): _tus_create,
    ("uploads_api.tus_upload", "GET"): _tus_get,
    ("uploads_api.tus_upload", "HEAD"): _tus_get,
    ("uploads_api.tus_append", "PATCH"): _tus_append,
    ("stage_two.upload", "POST"): _html_upload,
    ("stage_two.remove", "POST"): _html_remove,
    ("stage_two.download", "GET"): _get,
    ("stage_two.download", "HEAD"): _get,
}


def document_rules(app: Any) -> list[Any]:
    return [
        rule
        for rule in app.url_map.iter_rules()
        if "documents" in rule.rule or "uploads" in rule.rule
    ]


def methods(rule: Any) -> list[str]:
    """The rule's methods; OPTIONS only where the view answers it itself."""
    automatic = rule.provide_automatic_options
    return sorted(m for m in rule.methods if m != "OPTIONS" or not automatic)


def is_staff(rule: Any) -> bool:
    return rule.rule.startswith(STAFF_PREFIXES)


def paths(world: World, rule: Any) -> list[str]:
    """The rule's path with each of A's values for its variables (a new variable fails)."""
    values = {
        "item": ("identity", "police", "education"),
        "document_id": world.a_documents,
        "upload_id": tuple(u.rsplit("/", 1)[1] for u in world.a_uploads),
        "reference": (world.registry.get_case(case_id_of(world.a)).reference,),
        "case_id": (str(case_id_of(world.a)),),
    }
    found = [rule.rule]
    for name in rule.arguments:
        assert name in values, f"{rule.rule}: teach the walker A's values for <{name}>"
        found = [
            p.replace(f"<{name}>", v).replace(f"<string:{name}>", v)
            for p in found
            for v in values[name]
        ]
    return found


def leaks(world: World, response: Any) -> list[str]:
    seen = response.get_data() + repr(dict(response.headers)).encode()
    return [s for s in world.a_secrets if s.encode() in seen]


def test_the_walker_knows_every_applicant_document_route(app: Any) -> None:
    present = {
        (rule.endpoint, method)
        for rule in document_rules(app)
        if not is_staff(rule)
        for method in methods(rule)
    }
    assert present - set(WALKERS) == set(), "new document routes: teach WALKERS to call them"
    assert set(WALKERS) - present == set(), "WALKERS lists routes that no longer exist"


def test_another_applicant_cannot_read_list_replace_or_remove_documents_on_any_route(
    world: World,
) -> None:
    before = world.a_state()
    walked = 0
    for rule in document_rules(world.app):
        for method in methods(rule):
            walker = WALKERS.get((rule.endpoint, method))
            assert walker is not None or is_staff(rule), f"unknown route {method} {rule.rule}"
            for path in paths(world, rule):
                if walker is None:
                    answers = [world.b.open(path, method=method)]
                else:
                    answers = walker(world, path)
                for answer in answers:
                    where = f"{method} {path} -> {answer.status_code}"
                    assert answer.status_code < 500, where
                    assert leaks(world, answer) == [], where
                    if walker is None:
                        assert answer.status_code in STAFF_REFUSALS, where
                    walked += 1
                    answer.close()
    assert world.a_state() == before, "B changed A's documents or uploads"
    assert walked > 40  # the walker did walk: every route, with each of A's ids

    # and A still reads every one of A's own documents
    for document in world.a_documents:
        with world.a.get(f"/api/v1/case/documents/{document}") as own:
            assert own.status_code == 200
            assert A_MARKER.encode() in own.data


def test_b_s_own_document_ids_open_only_b_s_documents(world: World) -> None:
    listed = world.b.get("/api/v1/case/documents").json
    assert leaks(world, world.b.get("/api/v1/case/documents")) == []
    for document in listed["documents"]:
        with world.b.get(f"/api/v1/case/documents/{document['document_id']}") as own:
            assert own.status_code == 200
            assert b"Bola" in own.data
