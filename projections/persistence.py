"""Turns a process's environment into the eventsourcing library's settings for each application.

carepath uses the library's own keys (PERSISTENCE_MODULE, REGISTRY_SQLITE_DBNAME,
REGISTRY_POSTGRES_DBNAME, ...), so everything the library documents works unchanged. This module
only supplies the embedded defaults (SQLite files under the data folder), maps carepath's cipher
key onto the library's, and forces CREATE_TABLE off for serving processes.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

SQLITE = "eventsourcing.sqlite"
POSTGRES = "eventsourcing.postgres"
UNPIPELINED_PROCESS_RECORDER = "projections.recorders:UnpipelinedPostgresProcessRecorder"
SECRET_FILE = "secret.key"  # noqa: S105 - a file name, not a secret


def data_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("CAREPATH_DATA_DIR", "data")).resolve()


def backend(environ: Mapping[str, str]) -> str:
    """ "sqlite" or "postgres", from PERSISTENCE_MODULE (SQLite when unset)."""
    module = (
        environ.get("REGISTRY_PERSISTENCE_MODULE") or environ.get("PERSISTENCE_MODULE") or SQLITE
    )
    if module == POSTGRES:
        return "postgres"
    if module == SQLITE:
        return "sqlite"
    if module == "eventsourcing.popo":
        return "memory"
    raise ValueError(f"PERSISTENCE_MODULE must be {SQLITE} or {POSTGRES}, not {module}")


def application_env(
    environ: Mapping[str, str], app_name: str, *, create_table: bool
) -> dict[str, str]:
    """The env dict to construct application `app_name` with."""
    env = {k: v for k, v in environ.items() if isinstance(v, str)}
    prefix = app_name.upper()
    kind = backend(environ)
    env.setdefault(
        "PERSISTENCE_MODULE",
        {"sqlite": SQLITE, "postgres": POSTGRES}.get(kind, "eventsourcing.popo"),
    )
    if kind == "sqlite":
        folder = data_dir(environ)
        folder.mkdir(parents=True, exist_ok=True)
        env.setdefault(f"{prefix}_SQLITE_DBNAME", str(folder / f"{app_name.lower()}.sqlite"))
    if kind == "postgres":
        env.setdefault("POSTGRES_HOST", "127.0.0.1")
        env.setdefault("POSTGRES_PORT", "5432")
        env.setdefault("POSTGRES_USER", "postgres")
        env.setdefault("POSTGRES_PASSWORD", "")
        # Connections are opened eagerly up to the pool size and each process holds several
        # applications: keep one open each and open more on demand, so a whole deployment stays
        # well inside max_connections (100 by default).
        env.setdefault("POSTGRES_POOL_SIZE", "1")
        env.setdefault("POSTGRES_MAX_OVERFLOW", "8")
        # Fail a blocked table lock after a few seconds rather than hang a request forever.
        env.setdefault("POSTGRES_LOCK_TIMEOUT", "5")
        # Followers (the allocator) write big batches; see projections/recorders.py for why.
        env.setdefault("PROCESS_RECORDER_TOPIC", UNPIPELINED_PROCESS_RECORDER)
    cipher_key = environ.get("CAREPATH_CIPHER_KEY")
    if cipher_key:
        env["CIPHER_TOPIC"] = "eventsourcing.cryptography:AESCipher"
        env["CIPHER_KEY"] = cipher_key
    for carepath_key, library_key in (
        ("CAREPATH_GROUP_COMMIT", "GROUP_COMMIT"),
        ("CAREPATH_GROUP_COMMIT_MAX_BATCH", "GROUP_COMMIT_MAX_BATCH"),
        ("CAREPATH_GROUP_COMMIT_MAX_WAIT_MS", "GROUP_COMMIT_MAX_WAIT_MS"),
        ("CAREPATH_INTAKE_CACHE_SECONDS", "INTAKE_CACHE_SECONDS"),
        ("CAREPATH_DRAW_BEACON", "DRAW_BEACON"),
        ("CAREPATH_DRAW_DELAY_SECONDS", "DRAW_DELAY_SECONDS"),
        ("CAREPATH_DRAW_SECRETS_DIR", "DRAW_SECRETS_DIR"),
    ):
        if carepath_key in environ:
            env.setdefault(library_key, environ[carepath_key])
    if kind in {"sqlite", "postgres"}:
        # A lottery's secret is kept in files, outside the database, until its draw.
        env.setdefault("DRAW_SECRETS_DIR", str(data_dir(environ) / "draw-secrets"))
    env["CREATE_TABLE"] = "y" if create_table else "n"
    env[f"{prefix}_CREATE_TABLE"] = env["CREATE_TABLE"]
    return env


def views_url(environ: Mapping[str, str]) -> str:
    """SQLAlchemy URL of the read models: a SQLite file beside the logs, or the same PostgreSQL."""
    explicit = environ.get("CAREPATH_VIEWS_URL")
    if explicit:
        return explicit
    if backend(environ) == "postgres":
        env = application_env(environ, "Views", create_table=False)
        user = quote(env["POSTGRES_USER"], safe="")
        password = quote(env.get("POSTGRES_PASSWORD", ""), safe="")
        auth = f"{user}:{password}" if password else user
        name = env.get("VIEWS_POSTGRES_DBNAME") or env.get("POSTGRES_DBNAME")
        if not name:
            raise ValueError("POSTGRES_DBNAME must be set when PERSISTENCE_MODULE is PostgreSQL")
        host, port = env["POSTGRES_HOST"], env["POSTGRES_PORT"]
        return f"postgresql+psycopg://{auth}@{host}:{port}/{name}"
    folder = data_dir(environ)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'views.sqlite'}"


def registry_secret(environ: Mapping[str, str]) -> bytes:
    """The secret behind case ids, access codes and sessions.

    CAREPATH_SECRET in production. In the embedded mode a random one is made once and kept in
    the data folder: losing it would let the same person register again, so it is never rotated.
    """
    given = environ.get("CAREPATH_SECRET")
    if given:
        if len(given.encode()) < 32:
            raise ValueError("CAREPATH_SECRET must be at least 32 characters")
        return given.encode()
    if backend(environ) == "postgres":
        raise ValueError("CAREPATH_SECRET must be set when PERSISTENCE_MODULE is PostgreSQL")
    path = data_dir(environ) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{SECRET_FILE}.{os.getpid()}")
        draft.write_text(secrets.token_hex(32))
        draft.chmod(0o600)
        try:
            os.link(draft, path)  # atomic: of two racing processes, one secret wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_bytes().strip()


def outbox_dir(environ: Mapping[str, str]) -> Path:
    """Where emails go when no SMTP server is configured: one .eml file per message."""
    return data_dir(environ) / "outbox"


def documents_dir(environ: Mapping[str, str]) -> Path:
    """Where document blobs live: outside the web root, under the data dir unless set."""
    configured = environ.get("CAREPATH_DOCUMENTS_DIR")
    return Path(configured).resolve() if configured else data_dir(environ) / "documents"


def clamd_url(environ: Mapping[str, str]) -> str | None:
    """The virus scanner (clamd) to ask, e.g. tcp://127.0.0.1:3310; None: no scanning."""
    return environ.get("CAREPATH_CLAMD") or None


def audit_key_file(environ: Mapping[str, str]) -> Path:
    """The Ed25519 key that signs checkpoints: a file outside the database, made on first use."""
    configured = environ.get("CAREPATH_AUDIT_KEY_FILE")
    return Path(configured).resolve() if configured else data_dir(environ) / "audit-signing.key"


def audit_origin(environ: Mapping[str, str]) -> str:
    """The name before each log's in a checkpoint's origin line, and the key's name."""
    return environ.get("CAREPATH_AUDIT_ORIGIN") or "carepath.local"


def checkpoint_every(environ: Mapping[str, str]) -> int:
    """A checkpoint is signed every this many events of a log (and at each opening and close)."""
    return int(environ.get("CAREPATH_CHECKPOINT_EVERY", "1000"))
