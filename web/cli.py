"""The `carepath` command: database set-up, intakes, and the servers (Flask's click CLI)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from eventsourcing.persistence import PersistenceError
from flask.cli import FlaskGroup

from domain.allocator import Allocator
from domain.audit import compare_ledgers, recompute_draw
from domain.beacon import KNOWN_CHAINS, BeaconError, HttpBeacon, parse_round, round_time
from domain.checkpoints import Checkpoints
from domain.errors import CarepathError, IntakeAlreadyDefined, IntakeStateError, InvalidValue
from domain.ledger import ledger_id
from domain.notifications import Notifications
from domain.registry import NO_BEACON, Registry, check_time_zone
from domain.values import (
    DEFAULT_TIME_ZONE,
    LANGUAGES,
    DrawMode,
    IntakeStatus,
    IntakeView,
    Policy,
    UnusedReserved,
)
from projections.persistence import application_env
from projections.runner import catch_up
from projections.views import migrate
from web import create_app
from web.checklists import ChecklistFileError, read_checklist
from web.settings import Settings
from web.times import WallClockError, wall_clock

OPERATOR = "operator:cli"
DEMO_CODE = "demo"


@click.group(
    cls=FlaskGroup,
    create_app=create_app,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
)
def cli() -> None:
    """carepath: intake registration that never loses a step."""


@contextmanager
def registry(*, create_table: bool = False) -> Iterator[Registry]:
    """A Registry for one command; domain and storage errors become one-line CLI errors."""
    try:
        built = Settings.from_environ().build_registry(create_table=create_table)
    except (ValueError, OSError) as bad:
        raise click.ClickException(f"configuration: {bad}") from None
    except PersistenceError as down:
        raise click.ClickException(f"database: {down}") from None
    try:
        yield built
    except InvalidValue as invalid:
        hint = {"pools": "--pool", "checklist": "--checklist", "sections": "--checklist"}.get(
            invalid.field, f"--{invalid.field.replace('_', '-')}"
        )
        raise click.BadParameter(invalid.message, param_hint=hint) from None
    except CarepathError as refused:
        raise click.ClickException(str(refused)) from None
    except PersistenceError as failed:
        raise click.ClickException(
            f"database: {failed} (has `carepath db init` been run for this database?)"
        ) from None
    finally:
        built.close()


@cli.group()
def db() -> None:
    """The event store's tables."""


@db.command("init")
def db_init() -> None:
    """Create the event stores' tables and migrate the read models (serving processes never do)."""
    with registry(create_table=True) as built:
        click.echo(
            f"ready: Registry event store ({type(built.recorder).__name__}), "
            f"{built.recorder.max_notification_id() or 0} events"
        )
    environ = Settings.from_environ().environ
    try:
        allocator = Allocator(env=application_env(environ, Allocator.name, create_table=True))
        position = allocator.position(Registry.name)
        allocator.close()
        Notifications(env=application_env(environ, Notifications.name, create_table=True)).close()
        Settings.from_environ().build_staff(create_table=True).close()
        Checkpoints(env=application_env(environ, Checkpoints.name, create_table=True)).close()
        revision = migrate(environ)
    except PersistenceError as down:
        raise click.ClickException(f"database: {down}") from None
    click.echo(f"ready: Allocator event store, at position {position} of the Registry's log")
    click.echo("ready: Notifications event store")
    click.echo("ready: Staff event store")
    click.echo("ready: Checkpoints event store")
    click.echo(f"ready: read models at migration {revision}")


@cli.group()
def intake() -> None:
    """Define, open, close and list intakes."""


def _when(value: str | None, option: str, zone: str) -> datetime | None:
    """An ISO date-time; without an offset, a wall-clock time in the intake's zone."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date-time like 2025-03-31T13:00", param_hint=option
        ) from None
    if parsed.tzinfo:
        return parsed.astimezone(UTC)
    try:
        return wall_clock(parsed, zone).astimezone(UTC)  # stored times are UTC
    except WallClockError as unclear:
        raise click.BadParameter(str(unclear), param_hint=option) from None


def _zone(name: str) -> str:
    """The zone as the Registry checks it, so naive --opens-at/--closes-at can be read in it."""
    try:
        check_time_zone(name)
    except InvalidValue as bad:
        raise click.BadParameter(bad.message, param_hint="--time-zone") from None
    return name


@intake.command("create")
@click.option("--code", required=True, help="Short id used in URLs, e.g. hcw-2025-out")
@click.option("--name", required=True)
@click.option("--stream", default="", help="Program stream, e.g. 'outside Canada'")
@click.option("--capacity", type=int, required=True)
@click.option("--policy", type=click.Choice([p.value for p in Policy]), default="first_come")
@click.option("--opens-at", help="ISO date-time; without an offset, in --time-zone")
@click.option("--closes-at", help="ISO date-time; without an offset, in --time-zone")
@click.option("--document-deadline-days", type=int, default=28, show_default=True)
@click.option("--waitlist-length", type=int, default=0, show_default=True, help="0: no limit")
@click.option(
    "--pool",
    "pools",
    multiple=True,
    metavar="NAME=PLACES",
    help="a reserved pool, out of --capacity, e.g. alternate_format=100 (repeatable)",
)
@click.option(
    "--pool-label",
    "pool_labels",
    multiple=True,
    metavar="NAME:LANG=TEXT",
    help="what an applicant declares to qualify for a pool, per language (en, fr; repeatable)",
)
@click.option(
    "--unused-reserved",
    type=click.Choice([u.value for u in UnusedReserved]),
    default=UnusedReserved.TO_GENERAL.value,
    show_default=True,
    help="reserved places nobody in the pool takes: moved to the general pool (at the close, or"
    " after a lottery's draw) or kept",
)
@click.option(
    "--checklist",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML or JSON file: documents, sections and limits of stage two (default: the pilot's)",
)
@click.option(
    "--time-zone",
    default=DEFAULT_TIME_ZONE,
    show_default=True,
    metavar="ZONE",
    help="IANA name of the zone the intake's times are shown in to applicants and officers,"
    " e.g. America/Vancouver",
)
def intake_create(
    pools: tuple[str, ...],
    pool_labels: tuple[str, ...],
    checklist: Path | None,
    **options: Any,
) -> None:
    """Define a new intake (it opens with `carepath intake open`, or at --opens-at)."""
    reserved: dict[str, int] = {}
    for pool in pools:
        name, _, places = pool.partition("=")
        if not places.isdigit():
            raise click.BadParameter(f"{pool!r} is not NAME=PLACES", param_hint="--pool")
        reserved[name] = int(places)
    options["pools"] = reserved
    labels: dict[str, dict[str, str]] = {}
    for given in pool_labels:
        target, _, text = given.partition("=")
        name, _, language = target.partition(":")
        if not text.strip() or not name or language not in LANGUAGES:
            raise click.BadParameter(
                f"{given!r} is not NAME:LANG=TEXT (LANG one of {', '.join(LANGUAGES)})",
                param_hint="--pool-label",
            )
        labels.setdefault(name, {})[language] = text
    options["pool_labels"] = labels
    if checklist is not None:
        try:
            stage_two = read_checklist(checklist)
        except ChecklistFileError as bad:
            raise click.BadParameter(str(bad), param_hint="--checklist") from None
        options.update(
            checklist=stage_two.checklist,
            sections=stage_two.sections,
            case_document_bytes=stage_two.case_document_bytes,
        )
    zone = _zone(options["time_zone"])
    opens_at = _when(options.pop("opens_at"), "--opens-at", zone)
    closes_at = _when(options.pop("closes_at"), "--closes-at", zone)
    with registry() as built:
        built.define_intake(opens_at=opens_at, closes_at=closes_at, actor=OPERATOR, **options)
        click.echo(f"defined intake {options['code']}")


@intake.command("open")
@click.argument("code")
@click.option(
    "--beacon",
    type=click.Choice([*KNOWN_CHAINS, NO_BEACON]),
    help="a lottery's source of public randomness (default: CAREPATH_DRAW_BEACON, else"
    " drand-quicknet); none: you supply a value after the close, and the draw is then only as"
    " trustworthy as you",
)
def intake_open(code: str, beacon: str | None) -> None:
    """Open an intake for registrations; a lottery prints what it has committed to."""
    with registry() as built:
        built.open_intake(code, actor=OPERATOR, beacon=beacon)
        opened = built.get_intake(code)
        click.echo(f"opened intake {code}")
        for line in _draw_plan_lines(opened):
            click.echo(line)


def _draw_plan_lines(found: IntakeView) -> list[str]:
    if found.policy is not Policy.LOTTERY:
        return []
    lines = [f"  commitment to the draw secret (sha256): {found.seed_commitment}"]
    mode = found.draw.get("mode")
    if mode == DrawMode.BEACON.value:
        chain = found.draw["chain"]
        lines.append(
            f"  beacon: {chain['name']} (chain {chain['chain_hash']}), round"
            f" {found.draw['round']}, published at {found.draw['round_time']}"
        )
    elif mode == DrawMode.OPERATOR.value:
        lines.append(
            "  warning: no beacon; after the close, `carepath intake draw CODE --operator-value"
            " HEX` supplies the draw's value, and the draw is only as trustworthy as whoever"
            " supplies it"
        )
    return lines


@intake.command("draw")
@click.argument("code")
@click.option(
    "--round-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="the beacon round as drand's HTTP API returns it (JSON), fetched elsewhere",
)
@click.option("--operator-value", metavar="HEX", help="64 hex digits, for an intake with no beacon")
@click.option(
    "--beacon-url",
    default=lambda: os.environ.get("CAREPATH_BEACON_URL", "https://api.drand.sh"),
    show_default="CAREPATH_BEACON_URL or https://api.drand.sh",
)
def intake_draw(
    code: str, round_file: Path | None, operator_value: str | None, beacon_url: str
) -> None:
    """Make a closed lottery's draw now (the scheduler does it once the beacon round is out)."""
    with registry() as built:
        found = built.get_intake(code)
        beacon_round = None
        if operator_value is None:
            pending = built.pending_draw(code)
            if pending is None:
                raise click.ClickException(
                    f"intake {code} waits for no beacon round (not a closed beacon lottery,"
                    " or drawn already)"
                )
            chain, number = pending
            try:
                if round_file is not None:
                    beacon_round = parse_round(chain, json.loads(round_file.read_text()))
                else:
                    beacon_round = HttpBeacon(beacon_url).fetch(chain, number)
            except (BeaconError, OSError, ValueError) as bad:
                raise click.ClickException(f"cannot use the beacon round: {bad}") from None
            if beacon_round is None:
                raise click.ClickException(
                    f"round {number} is not published yet (due {round_time(chain, number)})"
                )
        built.draw(code, actor=OPERATOR, beacon_round=beacon_round, operator_value=operator_value)
        click.echo(f"recorded the draw inputs of {found.code}; the allocator draws next")


@intake.command("close")
@click.argument("code")
def intake_close(code: str) -> None:
    """Close an intake: no new registrations."""
    with registry() as built:
        built.close_intake(code, actor=OPERATOR)
        click.echo(f"closed intake {code}")


@intake.command("list")
def intake_list() -> None:
    """List every intake."""
    with registry() as built:
        intakes = built.list_intakes()
        if not intakes:
            click.echo("no intakes defined")
        for i in intakes:
            click.echo(
                f"{i.code:<20} {i.status.value:<8} {i.policy.value:<10} "
                f"capacity {i.capacity:<6} {i.time_zone:<20} {i.name}"
            )


@cli.command("demo")
def demo() -> None:
    """Define and open the demo intake if it is not there yet (safe to repeat)."""
    with registry() as built:
        with suppress(IntakeAlreadyDefined):
            built.define_intake(
                code=DEMO_CODE,
                name="Home Care Worker Immigration Pilot (demo)",
                stream="outside Canada",
                capacity=4700,
                policy="first_come",
                waitlist_length=1000,
                actor=OPERATOR,
            )
        with suppress(IntakeStateError):
            built.open_intake(DEMO_CODE, actor=OPERATOR)
        status = built.get_intake(DEMO_CODE).status
        click.echo(f"demo intake {DEMO_CODE} is {status.value}")
        if status is not IntakeStatus.OPEN:
            raise click.ClickException("the demo intake is closed; use a fresh CAREPATH_DATA_DIR")


@cli.group()
def audit() -> None:
    """Recompute from the logs and compare with what was recorded."""


def _registry_events(built: Registry, topics: tuple[str, ...]) -> list[Any]:
    events, position = [], 0
    while True:
        page = built.recorder.select_notifications(
            start=position, limit=1000, topics=topics, inclusive_of_start=False
        )
        events.extend(built.mapper.to_domain_event(n) for n in page)
        if len(page) < 1000:
            return events
        position = page[-1].id


@audit.command("draw")
@click.argument("code")
def audit_draw(code: str) -> None:
    """Recompute an intake's lottery from the logs and compare it with its Ledger."""
    environ = Settings.from_environ().environ
    with registry() as built:
        intake_id = built.get_intake(code).id
        click.echo(f"reading the Registry's log for intake {code} ...", err=True)
        events = _registry_events(built, Allocator.topics)
        allocator = Allocator(env=application_env(environ, Allocator.name, create_table=False))
        replay = Allocator(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        try:
            stored = list(allocator.events.get(ledger_id(intake_id)))
            result = recompute_draw(events, stored, intake_id)
            click.echo(f"replaying {len(events)} events into a fresh allocator ...", err=True)
            catch_up(built, replay)
            same, detail = compare_ledgers(stored, replay.events.get(ledger_id(intake_id)))
            result.check(
                "a fresh allocator replaying the log records the same ledger", same, detail
            )
        finally:
            allocator.close()
            replay.close()
    for name, held, detail in result.checks:
        click.echo(f"{'ok  ' if held else 'FAIL'} {name}{f'  ({detail})' if detail else ''}")
    for warning in result.warnings:
        click.echo(f"WARN {warning}")
    if result.fairness:
        for line in fairness_lines(result.fairness):
            click.echo(line)
    verdict = "matches" if result.ok else "DOES NOT MATCH"
    click.echo(f"draw of {code}: {result.entries} entries; the ledger {verdict} the log")
    if not result.ok:
        raise SystemExit(1)


def one_in(p_value: float) -> str:
    return "never" if p_value <= 0 else f"about 1 draw in {max(1, round(1 / p_value)):,}"


def fairness_lines(figures: dict[str, Any]) -> list[str]:
    """The draw's fairness figures as recorded, with what a p-value does and does not say."""
    lines = ["fairness of the draw (entries in the order submitted to the log, ten groups):"]
    lines.append("  group  entries  selected  rate")
    for number, (entries, selected) in enumerate(figures.get("deciles", []), start=1):
        rate = selected / entries if entries else 0.0
        lines.append(f"  {number:>5}  {entries:>7}  {selected:>8}  {rate:6.1%}")
    p_value = float(figures["p_value"])
    lines.append(
        f"  chi-square {figures['chi_square']:.3f} with {figures['degrees_of_freedom']} degrees"
        f" of freedom: p = {p_value:.4f} (a fair draw gives groups this uneven or more"
        f" {one_in(p_value)})"
    )
    if ranks := figures.get("rank_sum"):
        lines.append(
            f"  rank-sum of positions, {ranks['selected']} selected against {ranks['others']}"
            f" others: U = {ranks['u']:.0f}, z = {ranks['z']:.3f}"
            f" ({'earlier' if ranks['z'] < 0 else 'later'} than the others on average),"
            f" p = {ranks['p_value']:.4f}"
        )
    lines.append(
        "  A low p-value alone is no proof of bias: one fair draw in 20 gives p below 0.05, and"
        " one in 200 below 0.005. Bias is shown by the checks above failing, or by p-values"
        " that stay low over many draws."
    )
    return lines


@cli.command("web")
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", type=int, default=None, help="default: 2 x CPU cores")
@click.option(
    "--threads",
    type=int,
    default=16,
    show_default=True,
    help="threads per worker (gthread); concurrent requests share group commits",
)
@click.option("--backlog", type=int, default=2048, show_default=True)
def web(bind: str, workers: int | None, threads: int, backlog: int) -> None:
    """Production web server (gunicorn); each worker builds its app after the fork.

    Threaded workers, because group commit needs concurrent requests in one process to gather
    their saves (a sync worker serves one request at a time and has nothing to batch). The
    Registry's connection pool is sized to the threads: a few kept open, more opened on demand.
    """
    from gunicorn.app.base import BaseApplication

    _limit_malloc_arenas()
    count = workers or 2 * (os.cpu_count() or 1)
    os.environ.setdefault("REGISTRY_POSTGRES_POOL_SIZE", "2")
    os.environ.setdefault("REGISTRY_POSTGRES_MAX_OVERFLOW", str(threads))
    os.environ.setdefault("CAREPATH_MAX_IN_FLIGHT", str(max(1, threads - 2)))

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {
                "bind": bind,
                "workers": count,
                "threads": threads,
                "worker_class": "gthread" if threads > 1 else "sync",
                "backlog": backlog,
                "preload_app": False,
                "timeout": 30,
                "graceful_timeout": 10,
                "keepalive": 5,
                "accesslog": None,
            }.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app()

    click.echo(f"carepath web on http://{bind}/ with {count} workers x {threads} threads")
    Server().run()


def _limit_malloc_arenas() -> None:
    """Run with two malloc arenas per process unless MALLOC_ARENA_MAX says otherwise.

    glibc gives each thread its own arena (up to 8 per core), and memory freed in one stays
    there: after the content checks of 16 threads' uploads a worker kept about 150 MB more than
    when idle (`make bench-uploads`), against about 40 MB with two arenas, with the same
    throughput. glibc reads the variable when the process starts (mallopt at run time did not
    change the figure), so the command starts itself again with it set; the pid stays the same.
    """
    if "MALLOC_ARENA_MAX" in os.environ or not sys.argv[0]:
        return
    os.environ["MALLOC_ARENA_MAX"] = "2"
    os.execv(sys.executable, [sys.executable, *sys.argv])  # noqa: S606  (this very command, again)


from web import cli_audit as _audit_commands  # noqa: E402, F401  (`carepath audit verify` ...)
from web import cli_documents as _document_commands  # noqa: E402, F401  (`carepath documents`)
from web import cli_notifications as _notification_commands  # noqa: E402, F401  (`carepath notifications`)
from web import cli_projections  # noqa: E402, F401  (registers `carepath projections` on cli)
from web import cli_staff as _staff_commands  # noqa: E402, F401  (`carepath staff`)
