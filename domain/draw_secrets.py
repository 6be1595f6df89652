"""Where a lottery's secret waits between the opening and the draw: outside the database.

The secret is drawn at random when a lottery opens; only its SHA-256 goes into the log. Kept out
of the database, so that a copy of the database (a backup, a replica, a DBA) does not hold it;
revealed in the log at the draw, after the entries are fixed and the beacon round is out.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Protocol
from uuid import UUID

_SECRET = re.compile(r"^[0-9a-f]{64}$")


class DrawSecrets(Protocol):
    def put(self, intake_id: UUID, secret: str) -> None:
        """Keep the secret of this intake; refuses to replace one already kept."""

    def get(self, intake_id: UUID) -> str | None: ...


class DrawSecretError(Exception):
    """A secret that cannot be kept or is not what was kept."""


class MemoryDrawSecrets:
    """For tests and one-process embedded runs that need nothing to survive a restart."""

    def __init__(self) -> None:
        self._secrets: dict[UUID, str] = {}
        self._lock = threading.Lock()

    def put(self, intake_id: UUID, secret: str) -> None:
        with self._lock:
            if self._secrets.setdefault(intake_id, secret) != secret:
                raise DrawSecretError(f"intake {intake_id} already has a draw secret")

    def get(self, intake_id: UUID) -> str | None:
        return self._secrets.get(intake_id)


class FolderDrawSecrets:
    """One file per intake (`<intake id>.secret`, mode 0600) in a folder of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, intake_id: UUID) -> Path:
        return self.folder / f"{intake_id.hex}.secret"

    def put(self, intake_id: UUID, secret: str) -> None:
        if not _SECRET.match(secret):
            raise DrawSecretError("a draw secret is 64 lower-case hex digits")
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(intake_id)
        if path.exists():
            if self.get(intake_id) == secret:
                return
            raise DrawSecretError(f"intake {intake_id} already has a draw secret in {path}")
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secret + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(partial, path)  # fails if another process kept one first: never replaced
        except FileExistsError:
            if self.get(intake_id) != secret:
                raise DrawSecretError(f"intake {intake_id} already has a draw secret") from None
        finally:
            partial.unlink(missing_ok=True)

    def get(self, intake_id: UUID) -> str | None:
        try:
            text = self._path(intake_id).read_text().strip()
        except FileNotFoundError:
            return None
        if not _SECRET.match(text):
            raise DrawSecretError(f"{self._path(intake_id)} does not hold a draw secret")
        return text
