"""`carepath notifications list|retry|bounce`: the messages recorded for applicants and what
became of each; trying rejected, abandoned or bounced ones again (the worker's sender does the
sending); recording the bounce reports relays send back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO
from uuid import UUID

import click
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import PersistenceError

from domain.bounces import NotADeliveryReport, read_report
from domain.errors import CarepathError
from domain.notifications import Kind, MessageView, Notifications
from projections.persistence import application_env
from projections.worker import Worker, record_notifications
from web.cli import cli
from web.settings import Settings

STATES = ("pending", "delivered", "rejected", "abandoned", "bounced")
PAGE = 500


@cli.group("notifications", cls=click.Group)
def notifications() -> None:
    """Emails to applicants: recorded from the logs, sent by the worker."""


@contextmanager
def _store() -> Iterator[Notifications]:
    try:
        environ = Settings.from_environ().environ
        store = Notifications(env=application_env(environ, Notifications.name, create_table=False))
    except (ValueError, OSError) as bad:
        raise click.ClickException(f"configuration: {bad}") from None
    except PersistenceError as down:
        raise click.ClickException(f"database: {down}") from None
    try:
        yield store
    except PersistenceError as down:
        raise click.ClickException(f"database: {down}") from None
    finally:
        store.close()


def _views(store: Notifications) -> Iterator[MessageView]:
    after = 0
    while page := store.message_ids(limit=PAGE, after=after):
        for _, id in page:
            yield store.view_message(id)
        after = page[-1][0]


@notifications.command("list")
@click.option("--state", type=click.Choice(STATES), help="only messages in this state")
@click.option("--kind", type=click.Choice([k.value for k in Kind]), help="only this kind")
@click.option("--case", "case_id", help="only the messages of this case id")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
def list_messages(state: str | None, kind: str | None, case_id: str | None, limit: int) -> None:
    """The recorded messages, oldest first, and where each one stands."""
    wanted_case = _uuid(case_id, "--case") if case_id else None
    with _store() as store:
        shown = 0
        counts = dict.fromkeys(STATES, 0)
        click.echo(
            f"{'message':<36}  {'kind':<21} {'state':<9} {'tries':>5}  recorded / retry / error"
        )
        for view in _views(store):
            counts[view.state] += 1
            if (
                (state and view.state != state)
                or (kind and view.kind != kind)
                or (wanted_case and view.case_id != wanted_case)
            ):
                continue
            if shown < limit:
                shown += 1
                detail = view.recorded_at.isoformat(timespec="seconds")
                if view.retry_at:
                    detail += f"  retry {view.retry_at.isoformat(timespec='seconds')}"
                if view.last_error and view.state != "delivered":
                    detail += f"  {view.last_error[:80]}"
                click.echo(
                    f"{view.id!s:<36}  {view.kind.value:<21} {view.state:<9} {view.attempts:>5}  "
                    f"{detail}"
                )
        click.echo(", ".join(f"{n} {s}" for s, n in counts.items()))


@notifications.command("status")
def status() -> None:
    """How far the notifier has read the Registry's and the Allocator's logs, and how many
    messages are in each state."""
    with _store() as store:
        settings = Settings.from_environ()
        worker = Worker(settings.environ, settings.secret)
        sources = [worker.registry(), worker.allocator()]
        try:
            click.echo(f"{'follows':<10} {'position':>12} {'head':>12}")
            for source in sources:
                head = source.recorder.max_notification_id() or 0
                click.echo(f"{source.name:<10} {store.position(source.name):>12} {head:>12}")
        finally:
            for source in sources:
                source.close()
        counts = dict.fromkeys(STATES, 0)
        for view in _views(store):
            counts[view.state] += 1
        click.echo("messages: " + ", ".join(f"{n} {s}" for s, n in counts.items()))


@notifications.command("skip-history")
def skip_history() -> None:
    """For a database whose history predates notifications: read both logs to their heads and
    send nothing for what is already there (offers still open are kept for their reminders).
    Run once, before the first worker with notifications starts; refused afterwards."""
    with _store() as store:
        if store.position("Registry") or store.position("Allocator"):
            raise click.ClickException(
                "the notifier has already read the logs: there is no history left to skip"
            )
        settings = Settings.from_environ()
        worker = Worker(settings.environ, settings.secret)
        registry, allocator = worker.registry(), worker.allocator()
        try:
            store.quiet = True
            read = record_notifications(registry, allocator, store)
            positions = {name: store.position(name) for name in ("Registry", "Allocator")}
        finally:
            registry.close()
            allocator.close()
        click.echo(
            f"skipped {read} events without sending: now at Registry {positions['Registry']}, "
            f"Allocator {positions['Allocator']}"
        )


@notifications.command("retry")
@click.argument("message_ids", nargs=-1)
@click.option("--all-abandoned", is_flag=True, help="every abandoned message")
@click.option("--all-rejected", is_flag=True, help="every rejected message")
def retry(message_ids: tuple[str, ...], all_abandoned: bool, all_rejected: bool) -> None:
    """Try rejected or abandoned messages again now (the running worker sends them)."""
    ids = [_uuid(text, "MESSAGE_ID") for text in message_ids]
    if not ids and not (all_abandoned or all_rejected):
        raise click.UsageError("name message ids, or --all-abandoned / --all-rejected")
    with _store() as store:
        if all_abandoned or all_rejected:
            states = {
                s
                for s, chosen in (("abandoned", all_abandoned), ("rejected", all_rejected))
                if chosen
            }
            ids += [v.id for v in _views(store) if v.state in states]
        for id in dict.fromkeys(ids):
            try:
                store.requeue(id, actor="cli")
            except AggregateNotFoundError:
                raise click.ClickException(f"no message {id}") from None
            except CarepathError as refused:
                raise click.ClickException(str(refused)) from None
            click.echo(f"requeued {id}")
        click.echo(f"{len(dict.fromkeys(ids))} message(s) requeued")


def _uuid(text: str, what: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a message or case id", param_hint=what) from None


@notifications.command("bounce")
@click.argument("report", type=click.File("rb"), default="-")
def bounce(report: BinaryIO) -> None:
    """Record a bounce from a delivery status notification (RFC 3464), as received: one email in
    REPORT, or on standard input (e.g. piped from the mailbox of the sender address)."""
    try:
        read = read_report(report.read())
    except NotADeliveryReport as refused:
        raise click.ClickException(str(refused)) from None
    if not read.bounced:
        click.echo(f"message {read.message_id}: the report says {read.action or 'nothing'}, not")
        click.echo("failed: nothing recorded")
        return
    with _store() as store:
        try:
            recorded = store.bounce(
                read.message_id,
                status=read.status,
                diagnostic=read.diagnostic,
                reported_by=read.reported_by,
                actor="cli",
            )
        except AggregateNotFoundError:
            raise click.ClickException(f"no message {read.message_id}") from None
        except CarepathError as refused:
            raise click.ClickException(str(refused)) from None
    if recorded:
        click.echo(f"recorded: message {read.message_id} bounced ({read.status} {read.diagnostic})")
    else:
        click.echo(f"message {read.message_id} was already recorded as bounced: nothing more")
