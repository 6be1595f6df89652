"""The Flask application: applicant pages, the JSON API and the CLI, built by create_app()."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from domain.casework import Casework
from projections.allocation import AllocationQueries
from projections.officer import OfficerQueries
from projections.views import make_engine
from web import (
    admission,
    api,
    applicant,
    auth,
    errors,
    health,
    i18n,
    officer,
    public,
    recovery,
    request_body,
    security,
    staff,
    staff_api,
    staff_auth,
    stage_two,
    uploads_api,
)
from web.extensions import babel, csrf, limiter, server_session
from web.i18n import select_locale
from web.settings import Settings

DRAIN_LIMIT = 128 * 1024 * 1024  # more than any route accepts (see web.request_body)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The composition root of a web process: reads settings once, builds its own Registry.

    The Registry (and its connection pool) is built here, after gunicorn forks, never at import.
    """
    app = Flask(__name__)
    settings = Settings.from_environ(test_config)
    app.config.from_mapping(settings.flask_config())
    app.extensions["carepath.settings"] = settings
    app.extensions["carepath.registry"] = settings.build_registry(create_table=False)
    credentials = app.extensions["carepath.staff_credentials"] = settings.staff_credentials()
    app.extensions["carepath.staff"] = settings.build_staff(
        create_table=False, credentials=credentials
    )
    # Status reads are one query each on the request path: no ping before it (see make_engine).
    app.extensions["carepath.allocations"] = allocations = AllocationQueries(
        make_engine(settings.environ, pre_ping=False)
    )
    # Officers: their queries share the read models' engine; the Allocator is only read (the
    # head of its log and its position in the Registry's, for the board's lag figures).
    app.extensions["carepath.officer_queries"] = OfficerQueries(allocations.engine)
    app.extensions["carepath.allocator"] = settings.build_allocator_reader()
    app.extensions["carepath.casework"] = Casework(
        app.extensions["carepath.registry"],
        app.extensions["carepath.staff"],
        holds_place=allocations.holds_place,
    )

    app.extensions["carepath.documents"] = settings.build_documents(
        app.extensions["carepath.registry"], allocations
    )
    app.extensions["carepath.recovery"] = settings.build_recovery(
        app.extensions["carepath.registry"]
    )
    # First of the request hooks: an overloaded process refuses before doing any other work.
    admission.init_app(
        app,
        limit=settings.max_in_flight,
        wait_seconds=settings.admission_wait_seconds,
        retry_after=settings.retry_after_seconds,
    )
    babel.init_app(app, locale_selector=select_locale)
    csrf.init_app(app)
    limiter.init_app(app)
    server_session.init_app(app)
    auth.init_app(app)
    staff_auth.init_app(app)  # after server_session: staff paths never see the applicant's
    i18n.init_app(app)
    security.init_app(app)
    errors.init_app(app)

    app.register_blueprint(health.bp)
    app.register_blueprint(applicant.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(stage_two.bp)
    app.register_blueprint(recovery.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    csrf.exempt(api.bp)
    app.register_blueprint(uploads_api.bp, url_prefix="/api/v1/case")
    csrf.exempt(uploads_api.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(officer.bp)
    app.register_blueprint(staff_api.bp, url_prefix="/api/v1/staff")
    # Outermost: the rest of every body is read before gunicorn keeps the connection alive.
    request_body.init_app(app, limit=DRAIN_LIMIT)
    return app
