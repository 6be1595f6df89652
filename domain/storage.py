"""What the document service needs from a blob store, an inspector and a virus scanner.

The filesystem store (domain.blobs), the content inspector (domain.inspection) and the clamd
client (domain.scanning) implement these; tests may pass their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class Received:
    """A file streamed into the store's staging area: not yet a blob, deleted unless committed."""

    path: Path  # a temporary file inside the store, never a client-chosen name
    size: int
    digest: str  # SHA-256 of the content, lower-case hex


@dataclass(frozen=True)
class Verdict:
    """A virus scanner's answer: clean, or infected with the signature it matched."""

    clean: bool
    signature: str = ""


@dataclass(frozen=True)
class Collected:
    """What one garbage collection did."""

    examined: int  # blobs older than the grace period
    kept: int  # of those, referenced by an event
    deleted: int
    bytes_freed: int


class BlobStore(Protocol):
    """Content-addressed storage of documents, outside the web root.

    `receive` streams a source into a temporary file while hashing it, refusing more than
    `limit` bytes (DocumentRefused "too_large") or nothing at all ("empty"); leaving the `with`
    block without `commit` deletes the temporary file. `commit` fsyncs the file, renames it to
    its digest's name and fsyncs the directory; it is a context manager that holds the store's
    shared collection lock while the caller records the event that references the blob, so the
    collector never deletes a blob whose event is being written.
    """

    def receive(self, source: BinaryIO, limit: int) -> AbstractContextManager[Received]: ...

    def commit(self, received: Received) -> AbstractContextManager[None]: ...

    def open(self, digest: str) -> BinaryIO:
        """The blob's content for reading; DocumentNotFound if there is none."""
        ...

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int: ...

    def digests(self) -> Iterator[str]:
        """Every stored blob's digest (for audits and tests)."""
        ...

    @property
    def staging(self) -> Path:
        """Where resumable uploads keep their parts until they complete."""
        ...

    def expire_staging(self, older_than: datetime) -> int:
        """Delete resumable uploads not added to since `older_than`; how many files went."""
        ...

    def collect(
        self,
        older_than: datetime,
        referenced: Callable[[Iterable[str]], set[str]],
        barrier: Callable[[], None],
    ) -> Collected:
        """Delete blobs last written before `older_than` that no event references.

        Under the exclusive collection lock (no commit in flight): lists the candidates, calls
        `barrier` (which returns once the references read model has caught up with the log,
        or raises to abandon the collection), asks `referenced` which candidates some event
        names, and deletes the others. Also removes abandoned temporary files of the same age.
        """
        ...


class Inspector(Protocol):
    """Decides what a received file is from its content alone, and refuses what is unsafe."""

    def inspect(self, path: Path, allowed: tuple[str, ...]) -> str:
        """The detected media type (a value of domain.values.DOCUMENT_TYPES) of the file.

        `allowed` holds type tokens ("pdf", "jpeg", "png"). Raises DocumentRefused with a code
        and a message an applicant understands: wrong_type, pdf_encrypted, pdf_malformed,
        pdf_active_content, pdf_embedded_files, image_malformed, image_too_many_pixels,
        polyglot.
        """
        ...

    def check_name(self, name: str) -> str:
        """The original file name, for display only, or DocumentRefused "bad_name"."""
        ...


class Scanner(Protocol):
    """A virus scanner: a verdict on a file, or ScannerUnavailable (the caller fails closed)."""

    def scan(self, path: Path) -> Verdict: ...
