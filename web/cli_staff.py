"""`carepath staff ...`: add, list, disable, enable, reset and revoke staff accounts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import click
from eventsourcing.persistence import PersistenceError

from domain.errors import CarepathError, InvalidValue, StaffNotFound
from domain.staff import Staff
from domain.values import StaffRole
from web.cli import OPERATOR, cli
from web.settings import Settings

BASE_URL = "http://127.0.0.1:8000"


@contextmanager
def staff_app() -> Iterator[Staff]:
    """The Staff application for one command; its errors become one-line CLI errors."""
    try:
        built = Settings.from_environ().build_staff(create_table=False)
    except (ValueError, OSError) as bad:
        raise click.ClickException(f"configuration: {bad}") from None
    except PersistenceError as down:
        raise click.ClickException(f"database: {down}") from None
    try:
        yield built
    except InvalidValue as invalid:
        hint = "EMAIL" if invalid.field == "email" else f"--{invalid.field}"
        raise click.BadParameter(invalid.message, param_hint=hint) from None
    except CarepathError as refused:
        raise click.ClickException(str(refused)) from None
    except PersistenceError as failed:
        raise click.ClickException(
            f"database: {failed} (has `carepath db init` been run for this database?)"
        ) from None
    finally:
        built.close()


def _member_id(built: Staff, email: str) -> UUID:
    try:
        return built.find(email).id
    except StaffNotFound:
        raise click.ClickException(f"no staff member with the email {email.strip()!r}") from None


def _link(base_url: str, staff_id: UUID, token: str) -> str:
    return f"{base_url.rstrip('/')}/staff/enrol/{staff_id.hex}.{token}"


base_url_option = click.option(
    "--base-url",
    default=BASE_URL,
    show_default=True,
    help="where staff open the web app (the enrolment link starts with it)",
)


@cli.group()
def staff() -> None:
    """Staff accounts: officers, auditors, admins."""


@staff.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice([r.value for r in StaffRole]))
@click.option("--name", default="", help="shown beside what they record (default: from EMAIL)")
@base_url_option
def staff_add(email: str, role: str, name: str, base_url: str) -> None:
    """Add a staff member and print their one-time enrolment link (72 hours)."""
    with staff_app() as built:
        staff_id, token = built.add(email, role=role, name=name, actor=OPERATOR)
        member = built.get(staff_id)
    click.echo(f"added {member.email} as {member.role.value}")
    click.echo(f"enrolment link (once, 72 hours): {_link(base_url, staff_id, token)}")


@staff.command("reset")
@click.argument("email")
@base_url_option
def staff_reset(email: str, base_url: str) -> None:
    """A new enrolment link: the old password, second factor and sessions stop working."""
    with staff_app() as built:
        staff_id = _member_id(built, email)
        token = built.reset(staff_id, actor=OPERATOR)
        address = built.get(staff_id).email
    click.echo(f"reset {address}: its password, second factor and sessions no longer work")
    click.echo(f"enrolment link (once, 72 hours): {_link(base_url, staff_id, token)}")


@staff.command("disable")
@click.argument("email")
def staff_disable(email: str) -> None:
    """Stop a member signing in; ends their sessions."""
    with staff_app() as built:
        built.disable(_member_id(built, email), actor=OPERATOR)
    click.echo(f"disabled {email.strip().lower()}")


@staff.command("enable")
@click.argument("email")
def staff_enable(email: str) -> None:
    """Let a disabled member sign in again."""
    with staff_app() as built:
        built.enable(_member_id(built, email), actor=OPERATOR)
    click.echo(f"enabled {email.strip().lower()}")


@staff.command("revoke")
@click.argument("email")
def staff_revoke(email: str) -> None:
    """End every session of a member now."""
    with staff_app() as built:
        ended = built.revoke_sessions(_member_id(built, email), actor=OPERATOR)
    click.echo(
        f"ended {ended} active session{'s' if ended != 1 else ''} of {email.strip().lower()}"
    )


@staff.command("list")
def staff_list() -> None:
    """List every staff member."""
    with staff_app() as built:
        members = built.list_staff()
    if not members:
        click.echo("no staff members")
    for m in members:
        state = "disabled" if m.disabled else ("enrolled" if m.enrolled else "not enrolled")
        locked = f" locked until {m.locked_until:%Y-%m-%d %H:%M} UTC" if m.locked_until else ""
        click.echo(
            f"{m.email:<36} {m.role.value:<8} {state:<12} sessions {m.active_sessions:<3} "
            f"{m.name}{locked}"
        )
