"""Database access: one engine per service database, a typed declarative base, a unit of work,
and Alembic migrations applied at start (or by ``mint migrate``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import DateTime, MetaData, create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: The shape of every service's declarative base — a class of its own, so the type checker sees
#: it and its MetaData is its own (one service's migrations never see another's tables)::
#:
#:     class Base(DeclarativeBase):
#:         metadata = service_metadata()
#:         type_annotation_map = TYPE_ANNOTATION_MAP
TYPE_ANNOTATION_MAP: dict[Any, Any] = {datetime: DateTime(timezone=True)}


def service_metadata() -> MetaData:
    """A fresh MetaData with the kit's constraint naming convention."""
    return MetaData(naming_convention=NAMING)


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """A pool that never churns: ``pool_size`` connections kept open, a few overflow ones for a
    burst (closed when returned — hence kept small). No ping on checkout: a round trip on every
    unit of work costs more than the rare dead connection, which fails its statement with a
    disconnect error; SQLAlchemy then invalidates the whole pool (every connection older than
    the failure is replaced on its next checkout), and the edge answers that one request 503.
    Statements are prepared server-side after their second use (psycopg's default)."""
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max(2, pool_size // 2),
        pool_pre_ping=False,
        pool_recycle=1800,
        pool_use_lifo=True,  # idle connections past the need age out instead of rotating
    )


class Database:
    """Engine + session factory for one service database."""

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error. Outbox rows and idempotency
        claims added to this session commit atomically with the state change."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def run_migrations(url: str, migrations_dir: Path) -> None:
    """Upgrade the database at ``url`` to head using the Alembic scripts in ``migrations_dir``.

    Concurrent starts (several replicas) serialise on a Postgres advisory lock.
    """
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = create_engine(url, poolclass=None)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT pg_advisory_lock(727274)")
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
            finally:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
    finally:
        engine.dispose()
