"""The filesystem blob store: receiving, committing, refusing and collecting documents' bytes."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.blobs import FilesystemBlobStore
from domain.errors import DocumentNotFound, DocumentRefused
from domain.storage import Collected
from domain.values import MB

CONTENT = b"%PDF-1.7 pretend document\n" * 100


def store_blob(store: FilesystemBlobStore, content: bytes) -> str:
    with store.receive(io.BytesIO(content), limit=MB) as received, store.commit(received):
        pass
    return received.digest


def age(store: FilesystemBlobStore, digest: str, days: int) -> None:
    path = store.root / "blobs" / digest[:2] / digest[2:4] / digest
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def tmp_files(store: FilesystemBlobStore) -> list[Path]:
    return list((store.root / "tmp").iterdir())


def keep_none(digests: Iterable[str]) -> set[str]:
    return set()


def caught_up() -> None:
    return None


@pytest.fixture
def store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "documents")


def test_committed_file_is_stored_under_its_sha256(store: FilesystemBlobStore) -> None:
    # given a document's bytes
    expected = hashlib.sha256(CONTENT).hexdigest()
    # when they are received and committed
    with store.receive(io.BytesIO(CONTENT), limit=MB) as received:
        assert received.size == len(CONTENT)
        assert received.path.parent == store.root / "tmp"
        with store.commit(received):
            pass
    # then the blob is there under its digest, readable, private, and the staging area is empty
    assert received.digest == expected
    assert store.exists(expected)
    assert store.size(expected) == len(CONTENT)
    with store.open(expected) as blob:
        assert blob.read() == CONTENT
    blob_path = store.root / "blobs" / expected[:2] / expected[2:4] / expected
    assert blob_path.stat().st_mode & 0o777 == 0o600
    assert (store.root / "blobs" / expected[:2]).stat().st_mode & 0o777 == 0o700
    assert list(store.digests()) == [expected]
    assert tmp_files(store) == []


def test_the_temporary_file_has_a_random_name_not_the_clients(store: FilesystemBlobStore) -> None:
    # given a source whose name is hostile
    source = io.BytesIO(CONTENT)
    source.name = "../../etc/passwd"
    # when it is received
    with store.receive(source, limit=MB) as received:
        # then it is staged under a name of the store's choosing
        assert received.path.parent == store.root / "tmp"
        assert "passwd" not in received.path.name


def test_a_received_file_left_uncommitted_is_deleted(store: FilesystemBlobStore) -> None:
    # given a received file
    with store.receive(io.BytesIO(CONTENT), limit=MB) as received:
        assert received.path.exists()
    # when the block ends without commit, then nothing is left
    assert not received.path.exists()
    assert tmp_files(store) == []
    assert list(store.digests()) == []


def test_one_byte_over_the_limit_is_refused_and_leaves_nothing(store: FilesystemBlobStore) -> None:
    # given a file one byte over a 1 MB limit
    source = io.BytesIO(b"x" * (MB + 1))
    # when it is received, then it is refused naming the limit
    with pytest.raises(DocumentRefused) as refused, store.receive(source, limit=MB):
        pytest.fail("the block must not run")
    assert refused.value.code == "too_large"
    assert refused.value.message == "The selected file must be smaller than 1 MB"
    assert refused.value.params == {"mb": "1"}
    assert tmp_files(store) == []


def test_a_file_of_exactly_the_limit_is_received(store: FilesystemBlobStore) -> None:
    with store.receive(io.BytesIO(b"x" * MB), limit=MB) as received:
        assert received.size == MB


def test_reading_stops_soon_after_the_limit(store: FilesystemBlobStore) -> None:
    # given a source far larger than the limit
    source = io.BytesIO(b"x" * (5 * MB))
    # when it is received, then it is refused having read no more than the limit and one byte
    with pytest.raises(DocumentRefused), store.receive(source, limit=MB):
        pass
    assert source.tell() == MB + 1


def test_an_empty_file_is_refused(store: FilesystemBlobStore) -> None:
    with pytest.raises(DocumentRefused) as refused, store.receive(io.BytesIO(b""), limit=MB):
        pass
    assert refused.value.code == "empty"
    assert refused.value.message == "The selected file is empty"
    assert tmp_files(store) == []


def test_committing_the_same_content_twice_keeps_one_blob(store: FilesystemBlobStore) -> None:
    # given a stored blob, last written long ago
    digest = store_blob(store, CONTENT)
    age(store, digest, days=30)
    # when the same content is committed again
    assert store_blob(store, CONTENT) == digest
    # then there is one blob, written just now
    assert list(store.digests()) == [digest]
    assert store.size(digest) == len(CONTENT)
    path = store.root / "blobs" / digest[:2] / digest[2:4] / digest
    assert time.time() - path.stat().st_mtime < 3600


@pytest.mark.parametrize(
    "digest",
    ["../../../etc/passwd", "A" * 64, "0" * 63, "0" * 65, "g" * 64, "", "0" * 62 + "/."],
)
def test_anything_but_a_digest_is_not_found(store: FilesystemBlobStore, digest: str) -> None:
    with pytest.raises(DocumentNotFound):
        store.open(digest)
    with pytest.raises(DocumentNotFound):
        store.size(digest)
    assert not store.exists(digest)


def test_a_missing_blob_is_not_found(store: FilesystemBlobStore) -> None:
    with pytest.raises(DocumentNotFound):
        store.open("0" * 64)
    assert not store.exists("0" * 64)


def test_collection_keeps_referenced_and_recent_blobs_and_deletes_the_rest(
    store: FilesystemBlobStore,
) -> None:
    # given an old referenced blob, an old unreferenced one and a recent unreferenced one
    kept = store_blob(store, b"kept")
    abandoned = store_blob(store, b"abandoned!")
    recent = store_blob(store, b"recent")
    age(store, kept, days=10)
    age(store, abandoned, days=10)
    asked: list[set[str]] = []

    def referenced(digests: Iterable[str]) -> set[str]:
        asked.append(set(digests))
        return {kept}

    # when blobs older than a day are collected
    collected = store.collect(datetime.now(UTC) - timedelta(days=1), referenced, caught_up)
    # then only the old unreferenced blob is gone
    assert asked == [{kept, abandoned}]
    assert sorted(store.digests()) == sorted([kept, recent])
    assert (collected.examined, collected.kept, collected.deleted) == (2, 1, 1)
    assert collected.bytes_freed == len(b"abandoned!")


def test_collection_removes_abandoned_temporary_files(store: FilesystemBlobStore) -> None:
    # given a staged file left by a crashed process long ago, and one being written now
    old = store.root / "tmp" / "upload-crashed"
    old.write_bytes(b"partial")
    then = time.time() - 10 * 86400
    os.utime(old, (then, then))
    current = store.root / "tmp" / "upload-current"
    current.write_bytes(b"partial")
    # when blobs older than a day are collected
    store.collect(datetime.now(UTC) - timedelta(days=1), keep_none, caught_up)
    # then only the old one is removed
    assert tmp_files(store) == [current]


def test_a_barrier_that_raises_abandons_the_collection(store: FilesystemBlobStore) -> None:
    # given an old unreferenced blob
    digest = store_blob(store, CONTENT)
    age(store, digest, days=10)

    def lagging() -> None:
        raise TimeoutError("the references read model is behind")

    # when collection's barrier raises, then the error comes through and nothing is deleted
    with pytest.raises(TimeoutError):
        store.collect(datetime.now(UTC) - timedelta(days=1), keep_none, lagging)
    assert list(store.digests()) == [digest]


def test_a_naive_cutoff_is_refused(store: FilesystemBlobStore) -> None:
    with pytest.raises(ValueError, match="time-zone"):
        store.collect(datetime(2026, 1, 1), keep_none, caught_up)


def test_collection_waits_for_a_commit_in_progress(store: FilesystemBlobStore) -> None:
    # given a commit whose event is still being recorded
    recorded: list[str] = []
    results: list[Collected] = []

    def collect_everything() -> None:
        # a cutoff in the future makes every blob a candidate: only the reference protects it
        cutoff = datetime.now(UTC) + timedelta(days=1)
        results.append(store.collect(cutoff, lambda ds: set(recorded) & set(ds), caught_up))

    collector = threading.Thread(target=collect_everything)
    with store.receive(io.BytesIO(CONTENT), limit=MB) as received, store.commit(received):
        # when the collector starts meanwhile
        collector.start()
        collector.join(timeout=0.5)
        # then it waits for the commit to finish
        assert collector.is_alive()
        recorded.append(received.digest)
    collector.join(timeout=10)
    # and once the event is recorded it runs, and keeps the blob
    assert not collector.is_alive()
    assert results == [Collected(examined=1, kept=1, deleted=0, bytes_freed=0)]
    assert list(store.digests()) == [received.digest]


def test_abandoned_resumable_uploads_expire_and_one_in_use_stays(tmp_path):
    store = FilesystemBlobStore(tmp_path / "documents")
    store.staging.mkdir()
    old, fresh = store.staging / "a", store.staging / "b"
    for path in (old, fresh, store.staging / "a.json"):
        path.write_bytes(b"part")
    week_ago = (datetime.now(UTC) - timedelta(days=8)).timestamp()
    os.utime(old, (week_ago, week_ago))
    os.utime(store.staging / "a.json", (week_ago, week_ago))

    removed = store.expire_staging(datetime.now(UTC) - timedelta(days=7))

    assert removed == 2
    assert sorted(p.name for p in store.staging.iterdir()) == ["b"]
