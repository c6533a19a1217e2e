"""Alembic environment of the registry: runs on the connection `ops.store.database.migrate` passes in.

Online mode only: the registry is migrated programmatically at start, never from an
alembic.ini; a URL in the config's `sqlalchemy.url` is accepted for manual use.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ops.errors import RegistryError
from ops.store.database import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RegistryError("alembic was given neither a connection nor sqlalchemy.url")
    with create_engine(url).begin() as own:
        run_migrations(own)
