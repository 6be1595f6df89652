"""The `carepath` command: web's CLI plus the long-running processes that combine the layers.

This is the one module above both `web` and `scheduler` (which never import each other), so the
embedded server can run all of them in one process.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any
from urllib.parse import urlsplit

import click

from projections.worker import Worker
from scheduler import service
from web import create_app
from web.cli import cli
from web.settings import Settings


def main() -> None:
    cli(prog_name="carepath")


def _settings() -> Settings:
    try:
        return Settings.from_environ()
    except (ValueError, OSError) as bad:
        raise click.ClickException(f"configuration: {bad}") from None


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _echo_mail(settings: Settings) -> None:
    if settings.smtp_url:
        click.echo(f"emails: sent through {_without_password(settings.smtp_url)}")
    else:
        click.echo(f"emails: written to the outbox folder {settings.outbox_dir}")


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    # A line per job run every few seconds would drown what matters; failures still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@cli.command("worker")
def worker() -> None:
    """The allocator and the read models (one active per database; others wait as standbys)."""
    _logging()
    settings = _settings()
    stop = _stop_on_signals()
    click.echo("carepath worker: allocator, read models and notifications")
    _echo_mail(settings)
    Worker(settings.environ, settings.secret, settings.letters()).run(stop)


@cli.command("scheduler")
@click.option("--interval", default=5.0, show_default=True, help="seconds between job runs")
def scheduler(interval: float) -> None:
    """Timed jobs: open and close intakes, expire offers (one active per database)."""
    _logging()
    settings = _settings()
    stop = _stop_on_signals()
    click.echo(f"carepath scheduler: jobs every {interval:.0f} s")
    service.run(settings.environ, settings.secret, stop, interval_seconds=interval)


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--threads", default=16, show_default=True, type=int)
@click.option("--interval", default=5.0, show_default=True, help="scheduler interval, seconds")
def serve(host: str, port: int, threads: int, interval: float) -> None:
    """Embedded mode: web, worker and scheduler in one process (SQLite by default)."""
    from waitress import serve as waitress_serve

    _logging()
    settings = _settings()
    app = create_app()
    stop = threading.Event()
    background = [
        threading.Thread(
            target=Worker(settings.environ, settings.secret, settings.letters()).run,
            args=(stop,),
            name="worker",
            daemon=True,
        ),
        threading.Thread(
            target=service.run,
            args=(settings.environ, settings.secret, stop),
            kwargs={"interval_seconds": interval},
            name="scheduler",
            daemon=True,
        ),
    ]
    for thread in background:
        thread.start()
    click.echo(f"carepath is running: open http://{host}:{port}/  (Ctrl+C to stop)")
    _echo_mail(settings)
    sys.stdout.flush()
    try:
        waitress_serve(app, host=host, port=port, threads=threads, ident="carepath", _quiet=True)
    finally:
        stop.set()
        for thread in background:
            thread.join(timeout=10)
