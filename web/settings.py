"""The one place a web or CLI process reads its environment."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from cachelib import FileSystemCache

from domain.allocator import Allocator
from domain.blobs import FilesystemBlobStore
from domain.documents import Documents, Offers
from domain.identity import derive_key
from domain.inspection import ContentInspector
from domain.recovery import Recovery
from domain.registry import Registry
from domain.scanning import ClamdScanner
from domain.staff import Staff
from projections import persistence
from web.credentials import WebCredentials
from web.letters import Letters

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
DEFAULT_MAIL_FROM = "carepath <no-reply@carepath.invalid>"


@dataclass(frozen=True)
class Settings:
    """Everything a web process needs from its environment, read once."""

    environ: Mapping[str, str]
    data_dir: Path
    secret: bytes
    redis_url: str | None
    secure_cookies: bool
    ratelimit_enabled: bool
    ratelimit_register: str
    ratelimit_signin: str
    ratelimit_staff_signin: str
    ratelimit_recovery: str  # per client address
    ratelimit_recovery_case: str  # per case, from any address
    recovery_link_minutes: int
    recovery_floor_seconds: float  # a recovery request answers no sooner, matched or not
    session_hours: int
    staff_session_hours: float
    max_in_flight: int
    admission_wait_seconds: float
    retry_after_seconds: int
    documents_dir: Path
    clamd_url: str | None
    tus_threshold: int  # the JSON API takes larger files only through resumable (tus) uploads
    public_url: str  # where applicants reach the site: the links in emails start with it
    mail_from: str
    smtp_url: str | None  # None: emails go to the outbox folder
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_environ(cls, overrides: Mapping[str, Any] | None = None) -> Settings:
        overrides = dict(overrides or {})
        environ: dict[str, str] = dict(os.environ)
        environ.update(overrides.pop("ENV", {}))
        return cls(
            environ=environ,
            data_dir=persistence.data_dir(environ),
            secret=persistence.registry_secret(environ),
            redis_url=environ.get("CAREPATH_REDIS_URL") or None,
            secure_cookies=_flag(environ.get("CAREPATH_SECURE_COOKIES", "n")),
            ratelimit_enabled=_flag(environ.get("CAREPATH_RATELIMIT_ENABLED", "y")),
            ratelimit_register=environ.get("CAREPATH_RATELIMIT_REGISTER", "20 per minute"),
            ratelimit_signin=environ.get("CAREPATH_RATELIMIT_SIGNIN", "10 per minute"),
            ratelimit_staff_signin=environ.get("CAREPATH_RATELIMIT_STAFF_SIGNIN", "10 per minute"),
            ratelimit_recovery=environ.get("CAREPATH_RATELIMIT_RECOVERY", "10 per hour"),
            ratelimit_recovery_case=environ.get("CAREPATH_RATELIMIT_RECOVERY_CASE", "5 per hour"),
            recovery_link_minutes=int(environ.get("CAREPATH_RECOVERY_LINK_MINUTES", "30")),
            recovery_floor_seconds=float(environ.get("CAREPATH_RECOVERY_FLOOR_MS", "300")) / 1000,
            session_hours=int(environ.get("CAREPATH_SESSION_HOURS", "8")),
            staff_session_hours=float(environ.get("CAREPATH_STAFF_SESSION_HOURS", "8")),
            max_in_flight=int(environ.get("CAREPATH_MAX_IN_FLIGHT", "32")),
            admission_wait_seconds=float(environ.get("CAREPATH_ADMISSION_WAIT_MS", "500")) / 1000,
            retry_after_seconds=int(environ.get("CAREPATH_RETRY_AFTER", "5")),
            documents_dir=persistence.documents_dir(environ),
            clamd_url=persistence.clamd_url(environ),
            tus_threshold=int(environ.get("CAREPATH_TUS_THRESHOLD", str(1024 * 1024))),
            public_url=(environ.get("CAREPATH_PUBLIC_URL") or DEFAULT_PUBLIC_URL).rstrip("/"),
            mail_from=environ.get("CAREPATH_MAIL_FROM") or DEFAULT_MAIL_FROM,
            smtp_url=environ.get("CAREPATH_SMTP_URL") or None,
            overrides=overrides,
        )

    @property
    def outbox_dir(self) -> Path:
        return persistence.outbox_dir(self.environ)

    def letters(self) -> Letters:
        """The text of the worker's emails, with links to the public URL."""
        address = parseaddr(self.mail_from)[1]
        return Letters(
            public_url=self.public_url,
            sender=self.mail_from,
            recovery_key=derive_key(self.secret, "recovery-link"),
            message_domain=address.rpartition("@")[2] or "carepath.invalid",
        )

    def build_registry(self, *, create_table: bool) -> Registry:
        env = persistence.application_env(self.environ, Registry.name, create_table=create_table)
        return Registry(env=env, secret=self.secret)

    def build_recovery(self, registry: Registry) -> Recovery:
        """Recovery of lost access codes: links that work CAREPATH_RECOVERY_LINK_MINUTES."""
        return Recovery(registry, secret=self.secret, link_minutes=self.recovery_link_minutes)

    def build_allocator_reader(self) -> Allocator:
        """The Allocator as the web reads it: the head of its log and its position only."""
        env = persistence.application_env(self.environ, Allocator.name, create_table=False)
        return Allocator(env=env)

    def build_documents(self, registry: Registry, offers: Offers) -> Documents:
        """Stage two: blobs under the documents dir, checked by content, scanned if configured."""
        return Documents(
            registry,
            FilesystemBlobStore(self.documents_dir),
            ContentInspector(),
            offers,
            scanner=ClamdScanner.from_url(self.clamd_url) if self.clamd_url else None,
        )

    def staff_credentials(self) -> WebCredentials:
        return WebCredentials(self.secret)

    def build_staff(
        self, *, create_table: bool, credentials: WebCredentials | None = None
    ) -> Staff:
        """The Staff application: its own event store (`staff.sqlite` in the embedded mode)."""
        env = persistence.application_env(self.environ, Staff.name, create_table=create_table)
        return Staff(
            env=env,
            secret=self.secret,
            credentials=credentials or self.staff_credentials(),
            session_hours=self.staff_session_hours,
        )

    def flask_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "SECRET_KEY": hmac.new(self.secret, b"flask", hashlib.sha256).hexdigest(),
            "SESSION_COOKIE_NAME": "carepath_session",
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": self.secure_cookies,
            # A browser-session cookie (no Expires): closing the browser on a shared device ends
            # it. The stored session still expires PERMANENT_SESSION_LIFETIME after its last write.
            "SESSION_PERMANENT": False,
            "SESSION_REFRESH_EACH_REQUEST": False,  # see web/auth.py: touched every 15 minutes
            "PERMANENT_SESSION_LIFETIME": timedelta(hours=self.session_hours),
            "SESSION_KEY_PREFIX": "carepath:session:",
            "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the server-side session
            "WTF_CSRF_SSL_STRICT": self.secure_cookies,
            "MAX_CONTENT_LENGTH": 64 * 1024,
            "BABEL_DEFAULT_LOCALE": "en",
            "BABEL_TRANSLATION_DIRECTORIES": str(Path(__file__).parent / "translations"),
            "RATELIMIT_ENABLED": self.ratelimit_enabled,
            "RATELIMIT_HEADERS_ENABLED": True,
            "RATELIMIT_REGISTER": self.ratelimit_register,
            "RATELIMIT_SIGNIN": self.ratelimit_signin,
            "RATELIMIT_STAFF_SIGNIN": self.ratelimit_staff_signin,
            "RATELIMIT_RECOVERY": self.ratelimit_recovery,
            "RATELIMIT_RECOVERY_CASE": self.ratelimit_recovery_case,
            "RECOVERY_FLOOR_SECONDS": self.recovery_floor_seconds,
        }
        if self.redis_url:
            from redis import Redis

            config["SESSION_TYPE"] = "redis"
            config["SESSION_REDIS"] = Redis.from_url(self.redis_url)
            config["RATELIMIT_STORAGE_URI"] = self.redis_url
        else:
            sessions = self.data_dir / "sessions"
            sessions.mkdir(parents=True, exist_ok=True)
            config["SESSION_TYPE"] = "cachelib"
            config["SESSION_CACHELIB"] = FileSystemCache(str(sessions), threshold=0, mode=0o600)
            config["RATELIMIT_STORAGE_URI"] = "memory://"
        config.update(self.overrides)
        return config


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "y", "yes", "true", "on"}
