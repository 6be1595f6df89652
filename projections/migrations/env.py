"""Alembic environment: migrations of the read-model tables, on the database the env points at."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from projections.persistence import views_url

url = context.config.attributes.get("url") or views_url(os.environ)


def run_migrations_offline() -> None:
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, version_table="carepath_view_migrations")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
