"""`carepath audit verify|export|checkpoints|checkpoint|key`: the logs' Merkle trees, their signed
checkpoints, and an export an outside program can check."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from eventsourcing.persistence import PersistenceError

from domain.checkpoints import Checkpoints, load_signer, parse_notes
from domain.evidence import EvidenceError, export_line, salt_key
from domain.signed_note import NoteError, Verifier
from projections.persistence import (
    application_env,
    audit_key_file,
    audit_origin,
    checkpoint_every,
)
from projections.tree import LogReader, TreeFollower, record, sign_due, sign_now, stored
from projections.tree import verify_log as verify_one
from projections.views import make_engine
from projections.worker import LOGS
from web.cli import audit
from web.settings import Settings

SHOWN_FINDINGS = 20  # per log; the count of the rest is printed


@dataclass
class _Audit:
    engine: Any
    logs: dict[str, LogReader]
    checkpoints: Checkpoints
    key: bytes
    environ: dict[str, str]


@contextmanager
def _opened(*, signing: bool = False) -> Iterator[_Audit]:
    try:
        settings = Settings.from_environ()
        environ = dict(settings.environ)
        key_file = audit_key_file(environ)
        signer = None
        if signing or key_file.exists():
            signer = load_signer(key_file, audit_origin(environ), create=signing)
        engine = make_engine(environ)
    except (ValueError, OSError, NoteError) as bad:
        raise click.ClickException(f"configuration: {bad}") from None
    logs: dict[str, LogReader] = {}
    checkpoints = None
    try:
        for name in LOGS:
            logs[name] = LogReader(name, application_env(environ, name, create_table=False))
        checkpoints = Checkpoints(
            env=application_env(environ, Checkpoints.name, create_table=False), signer=signer
        )
        yield _Audit(engine, logs, checkpoints, salt_key(settings.secret), environ)
    except PersistenceError as down:
        raise click.ClickException(
            f"database: {str(down).strip().splitlines()[0] if str(down).strip() else down!r}"
            " (has `carepath db init` been run for this database?)"
        ) from None
    finally:
        for app in logs.values():
            app.close()
        if checkpoints is not None:
            checkpoints.close()
        engine.dispose()


def _log_names(only: str | None) -> tuple[str, ...]:
    if only is None:
        return LOGS
    if only not in LOGS:
        raise click.BadParameter(f"{only!r} is not one of {', '.join(LOGS)}", param_hint="--log")
    return (only,)


@audit.command("verify")
@click.option("--log", "only", help=f"one log only: {', '.join(LOGS)}")
@click.option(
    "--checkpoints",
    "published",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="published checkpoints to check too (the output of `carepath audit checkpoints`)",
)
@click.option("--verifier", help="the verifier key to check signatures with (default: ours)")
def verify(only: str | None, published: Path | None, verifier: str | None) -> None:
    """Check every stored event against its log's Merkle tree and every signed checkpoint.

    Reports each finding with its position (leaf index and notification id); exits 1 when
    anything was found.
    """
    names = _log_names(only)
    with _opened() as opened:
        try:
            key = Verifier.parse(verifier) if verifier else opened.checkpoints.verifier
            notes: list[Any] = list(opened.checkpoints.all())
            if published:
                notes += parse_notes(published.read_text())
        except NoteError as bad:
            raise click.ClickException(str(bad)) from None
        total = sum(opened.logs[name].recorder.max_notification_id() or 0 for name in names)
        started, reports = time.perf_counter(), []
        with click.progressbar(length=max(total, 1), label="verifying", file=sys.stderr) as bar:
            for name in names:
                reports.append(
                    verify_one(opened.engine, opened.logs[name], opened.key, notes, key, bar.update)
                )
        seconds = time.perf_counter() - started
    events = sum(report.events for report in reports)
    findings = 0
    for report in reports:
        line = (
            f"{report.log}: {report.events} events, tree of {report.tree_size},"
            f" {report.checkpoints} signed checkpoints"
        )
        if report.behind:
            line += f", {report.behind} newest events not yet in the tree"
        click.echo(line)
        for finding in report.findings[:SHOWN_FINDINGS]:
            click.echo(f"  FOUND {finding}")
        if len(report.findings) > SHOWN_FINDINGS:
            click.echo(f"  ... and {len(report.findings) - SHOWN_FINDINGS} more findings")
        findings += len(report.findings)
    rate = events / seconds if seconds > 0 else 0.0
    verdict = "clean" if not findings else f"{findings} findings"
    click.echo(
        f"verified {events} events of {len(reports)} logs in {seconds:.1f} s"
        f" ({rate:,.0f} events/s): {verdict}"
    )
    if findings:
        raise SystemExit(1)


def _until(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date-time like 2025-03-31T13:00:00+00:00",
            param_hint="--until",
        ) from None
    if parsed.tzinfo is None:
        raise click.BadParameter("give the time with its offset, e.g. +00:00", param_hint="--until")
    return parsed.astimezone(UTC)


@audit.command("export")
@click.option("--log", "only", help=f"one log only: {', '.join(LOGS)}")
@click.option("--until", "until_text", help="stop before the first event stamped after this time")
@click.option("--redact", is_flag=True, help="leave personal fields out (their hashes stay)")
def export(only: str | None, until_text: str | None, redact: bool) -> None:
    """Every stored event as one JSON line, in each log's order (README: "Audit export")."""
    names, until = _log_names(only), _until(until_text)
    out = sys.stdout
    written = 0
    with _opened() as opened:
        total = sum(opened.logs[name].recorder.max_notification_id() or 0 for name in names)
        with click.progressbar(length=max(total, 1), label="exporting", file=sys.stderr) as bar:
            for name in names:
                app = opened.logs[name]
                for index, notification in enumerate(stored(app)):
                    bar.update(1)
                    try:
                        found = record(app, notification, opened.key)
                    except EvidenceError as unreadable:
                        raise click.ClickException(
                            f"{name} position {index} (notification id {notification.id}):"
                            f" {unreadable}; run `carepath audit verify`"
                        ) from None
                    stamp = found.timestamp()
                    if until and stamp and datetime.fromisoformat(stamp) > until:
                        break
                    out.write(export_line(found, index, notification.id, redact=redact) + "\n")
                    written += 1
    click.echo(f"exported {written} events of {len(names)} logs", err=True)


@audit.command("checkpoints")
@click.option("--log", "only", help=f"one log only: {', '.join(LOGS)}")
@click.option("--latest", is_flag=True, help="only the latest checkpoint of each log")
def checkpoints(only: str | None, latest: bool) -> None:
    """The signed checkpoints, as notes one after another, for publication."""
    names = _log_names(only)
    with _opened() as opened:
        found = [c for c in opened.checkpoints.all() if c.log in names]
    if latest:
        newest: dict[str, Any] = {}
        for checkpoint in found:
            if checkpoint.size >= getattr(newest.get(checkpoint.log), "size", -1):
                newest[checkpoint.log] = checkpoint
        found = [newest[name] for name in names if name in newest]
    for checkpoint in found:
        click.echo(checkpoint.note, nl=False)
    click.echo(f"{len(found)} checkpoints", err=True)


@audit.command("checkpoint")
@click.option("--log", "only", help=f"one log only: {', '.join(LOGS)}")
def checkpoint(only: str | None) -> None:
    """Bring the trees up to date and sign a checkpoint of each now (on demand)."""
    names = _log_names(only)
    with _opened(signing=True) as opened:
        every = checkpoint_every(opened.environ)
        for name in names:
            TreeFollower(opened.engine, opened.logs[name], opened.key, every).catch_up()
        sign_due(opened.engine, opened.checkpoints)
        for name in names:
            state = sign_now(opened.engine, opened.checkpoints, name)
            click.echo(f"{name}: {state.size} events, root {state.root.hex()}")


@audit.command("key")
def key() -> None:
    """The verifier key that checks the checkpoints' signatures (publish it)."""
    with _opened(signing=True) as opened:
        verifier = opened.checkpoints.verifier
        if verifier is None:
            raise click.ClickException("no signing key is configured")
        click.echo(verifier.encode())
