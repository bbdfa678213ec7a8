"""Faults of the database, not of the request: the database is down, hung, locked,
read-only or not migrated. Requests that meet one get a 503 with Retry-After (the same
request may well succeed later) and the cause is logged in one line, never a 500 with
a traceback."""

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

RETRY_AFTER_SECONDS = 5
# PostgreSQL's SQLSTATE classes and codes that mean the database cannot do the work
# now: connection (08), login (28), no such database (3D), out of resources (53),
# shutdown or statement timeout (57), system errors (58); a read-only database, a
# serialization failure, a deadlock or a lock timeout; and a missing table or column,
# the database behind the migrations.
FAULT_SQLSTATE_CLASSES = frozenset({"08", "28", "3D", "53", "57", "58"})
FAULT_SQLSTATES = frozenset({"25006", "40001", "40P01", "55P03", "42P01", "42703"})
UNDEFINED_TABLE_SQLSTATE = "42P01"

logger = logging.getLogger(__name__)


def is_database_fault(error: Exception) -> bool:
    # All of SQLite's operational errors are the database's (locked, read-only, no
    # such table); OSError: the driver could not reach the server (refused, no such
    # host, no answer in time).
    if isinstance(error, OperationalError | InterfaceError | OSError):
        return True
    if isinstance(error, PoolTimeoutError):
        return True  # every connection stayed busy
    if isinstance(error, DBAPIError):
        sqlstate = getattr(error.orig, "sqlstate", None) or ""
        return (
            error.connection_invalidated
            or sqlstate[:2] in FAULT_SQLSTATE_CLASSES
            or sqlstate in FAULT_SQLSTATES
        )
    return False


def is_missing_table(error: DBAPIError) -> bool:
    if getattr(error.orig, "sqlstate", None) == UNDEFINED_TABLE_SQLSTATE:
        return True
    return "no such table" in str(error.orig)  # SQLite's


def describe(error: Exception) -> str:
    """The cause in one line: the driver's own message, without the statement and its
    parameters (which may hold user data) and without the URL's password (which no
    driver message contains)."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig else error
    lines = str(cause).strip().splitlines()
    if not lines and isinstance(cause, TimeoutError):
        lines = ["no answer within the timeout"]
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__


def replace_connections_closed_while_pooled(engine: AsyncEngine) -> None:
    """A connection that the server closed while it sat in the pool (a restart, a
    failover, a statement that timed out on a hung server) is replaced when a request
    takes it, instead of failing that request, however long after the close. asyncpg
    notices the close when it happens, so unlike `pool_pre_ping` this costs no round
    trip. Each worker has its own pool: without it, every worker would fail a request
    after a restart, the first time it served again."""

    @event.listens_for(engine.sync_engine, "checkout")
    def replace_if_closed(
        _: DBAPIConnection, record: ConnectionPoolEntry, __: PoolProxiedConnection
    ) -> None:
        driver_connection = record.driver_connection
        if driver_connection is not None and driver_connection.is_closed():
            raise DisconnectionError("the server closed the pooled connection")


async def database_fault_handler(request: Request, error: Exception) -> JSONResponse:
    if not is_database_fault(error):
        raise error  # a bug, not a fault: the server's 500 with its traceback
    method, path = request.method, request.url.path
    logger.warning("%s %s: database unavailable (%s)", method, path, describe(error))
    return JSONResponse(
        {"detail": "The database is unavailable; retry later"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def add_database_fault_handlers(app: FastAPI) -> None:
    for error_class in (DBAPIError, PoolTimeoutError, OSError):
        app.add_exception_handler(error_class, database_fault_handler)
