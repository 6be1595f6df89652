"""Documents' bytes on the local filesystem, stored under their SHA-256 and never a client's name.

root/blobs/ab/cd/abcd...   one file per distinct content, named by its digest (0o600)
root/tmp/                  uploads being received; same filesystem, so a rename is atomic
root/collect.lock          commits hold it shared, the collector exclusive (fcntl.flock)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from domain.errors import DocumentNotFound, DocumentRefused
from domain.storage import Collected, Received
from domain.values import MB

CHUNK = 64 * 1024
_DIGEST = re.compile(r"[0-9a-f]{64}")


class FilesystemBlobStore:
    """Content-addressed document storage in one directory outside the web root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "blobs"
        self._tmp = root / "tmp"
        self._lock_path = root / "collect.lock"
        for directory in (root, self._blobs, self._tmp):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    @contextmanager
    def receive(self, source: BinaryIO, limit: int) -> Iterator[Received]:
        """Stream `source` into a temporary file, hashing it; the file is gone after the block
        unless `commit` moved it. Reads at most `limit` + 1 bytes of `source`."""
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="upload-")  # mode 0o600
        path = Path(name)
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(min(CHUNK, limit + 1 - size)):
                    size += len(chunk)
                    if size > limit:
                        mb = f"{limit / MB:g}"
                        raise DocumentRefused(
                            "too_large", f"The selected file must be smaller than {mb} MB", mb=mb
                        )
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise DocumentRefused("empty", "The selected file is empty")
            yield Received(path=path, size=size, digest=digest.hexdigest())
        finally:
            path.unlink(missing_ok=True)

    @contextmanager
    def commit(self, received: Received) -> Iterator[None]:
        """Make the received file durable under its digest, then hold the shared collection lock
        while the caller records the event that references it."""
        target = self._path(received.digest)
        if received.path.parent != self._tmp:
            raise ValueError(f"{received.path} was not received by this store")
        with self._locked(fcntl.LOCK_SH):
            _fsync(received.path, os.O_RDONLY)
            created = self._make_parents(target.parent)
            # The same content may already be stored, and old: replacing it with the fresh file
            # also gives it a fresh mtime, so the collector does not count it abandoned.
            os.replace(received.path, target)
            for directory in {target.parent, self._tmp, *created}:
                _fsync(directory, os.O_RDONLY | os.O_DIRECTORY)
            yield

    def open(self, digest: str) -> BinaryIO:
        """The blob's content for reading; DocumentNotFound if there is none."""
        try:
            return open(self._path(digest), "rb")  # the caller closes it
        except FileNotFoundError:
            raise DocumentNotFound(f"no blob {digest}") from None

    def exists(self, digest: str) -> bool:
        try:
            return self._path(digest).is_file()
        except DocumentNotFound:
            return False

    def size(self, digest: str) -> int:
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError:
            raise DocumentNotFound(f"no blob {digest}") from None

    @property
    def staging(self) -> Path:
        """Where resumable uploads keep their bytes and metadata until complete (web's tus)."""
        return self.root / "uploads"

    def expire_staging(self, older_than: datetime) -> int:
        """Delete resumable uploads nobody has added to since `older_than` (each PATCH writes
        its file, so an upload in use is never old); the number of files removed."""
        if older_than.tzinfo is None:
            raise ValueError("older_than must carry its time zone")
        cutoff, removed = older_than.timestamp(), 0
        if not self.staging.is_dir():
            return 0
        for path in self.staging.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed

    def digests(self) -> Iterator[str]:
        """Every stored blob's digest, in order (for audits and tests)."""
        for path, _ in self._stored():
            yield path.name

    def collect(
        self,
        older_than: datetime,
        referenced: Callable[[Iterable[str]], set[str]],
        barrier: Callable[[], None],
    ) -> Collected:
        """Delete blobs last written before `older_than` that no event references.

        `older_than` must carry its time zone: a naive time would be read as local time.
        `bytes_freed` counts blobs only, not abandoned temporary files.
        """
        if older_than.tzinfo is None:
            raise ValueError("older_than must be time-zone aware")
        cutoff = older_than.timestamp()
        with self._locked(fcntl.LOCK_EX):
            candidates = {
                path.name: (path, stat.st_size)
                for path, stat in self._stored()
                if stat.st_mtime < cutoff
            }
            barrier()  # raises to abandon: nothing is deleted
            kept = referenced(list(candidates)) & candidates.keys()
            deleted = freed = 0
            for digest, (path, size) in candidates.items():
                if digest in kept:
                    continue
                path.unlink(missing_ok=True)
                deleted += 1
                freed += size
            for entry in os.scandir(self._tmp):
                stat = entry.stat(follow_symlinks=False)
                if entry.is_file(follow_symlinks=False) and stat.st_mtime < cutoff:
                    Path(entry.path).unlink(missing_ok=True)
        return Collected(
            examined=len(candidates), kept=len(kept), deleted=deleted, bytes_freed=freed
        )

    # Internals

    def _path(self, digest: str) -> Path:
        """The blob's path, built only from a well-formed digest (never from anything else)."""
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise DocumentNotFound("not a SHA-256 digest")
        return self._blobs / digest[:2] / digest[2:4] / digest

    def _stored(self) -> Iterator[tuple[Path, os.stat_result]]:
        for first in sorted(self._blobs.iterdir()):
            if not first.is_dir():
                continue
            for second in sorted(first.iterdir()):
                if not second.is_dir():
                    continue
                for path in sorted(second.iterdir()):
                    name = path.name
                    if (
                        _DIGEST.fullmatch(name)
                        and name[:2] == first.name
                        and name[2:4] == second.name
                    ):
                        try:
                            yield path, path.stat()
                        except FileNotFoundError:
                            continue  # collected meanwhile

    def _make_parents(self, directory: Path) -> list[Path]:
        """Create the blob's two directory levels (0o700); the parents of those created, to fsync."""
        created = []
        for level in (directory.parent, directory):
            try:
                level.mkdir(mode=0o700)
            except FileExistsError:
                continue
            created.append(level.parent)
        return created

    @contextmanager
    def _locked(self, operation: int) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, operation)
            yield
        finally:
            os.close(fd)  # releases the lock


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
