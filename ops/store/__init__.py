"""Persistence: the registry database, the snapshot store and the Alembic migrations."""
