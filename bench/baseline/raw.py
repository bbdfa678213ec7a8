"""The raw-driver baseline: the generated app's item routes with the same SQL, the same
request and response models, and the driver called directly (aiosqlite on one connection
for SQLite, an asyncpg pool for PostgreSQL). What the database path costs without an ORM.

DATABASE_URL is the generated app's URL (`sqlite+aiosqlite:///...` or
`postgresql+asyncpg://...`).
"""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import aiosqlite
import asyncpg
from fastapi import FastAPI, HTTPException, Query, Request, Response, status
from schemas import ItemCreate, ItemRead
from sqlalchemy.engine import make_url

URL = make_url(os.environ["DATABASE_URL"])
SQLITE = URL.get_backend_name() == "sqlite"


class Database:
    """The three statements the benchmark sends, on either driver."""

    async def open(self) -> None:
        if SQLITE:
            self.sqlite = await aiosqlite.connect(URL.database or "")
            self.write_lock = asyncio.Lock()
        else:
            dsn = URL.set(drivername="postgresql").render_as_string(hide_password=False)
            self.pool = await asyncpg.create_pool(dsn)

    async def close(self) -> None:
        await (self.sqlite.close() if SQLITE else self.pool.close())

    async def one(self, item_id: int) -> Any:
        if SQLITE:
            query = "SELECT id, name, description FROM items WHERE id = ?"
            async with self.sqlite.execute(query, (item_id,)) as cursor:
                return await cursor.fetchone()
        query = "SELECT id, name, description FROM items WHERE id = $1"
        return await self.pool.fetchrow(query, item_id)

    async def page(self, offset: int, limit: int) -> list[Any]:
        if SQLITE:
            query = "SELECT id, name, description FROM items ORDER BY id LIMIT ? OFFSET ?"
            async with self.sqlite.execute(query, (limit, offset)) as cursor:
                return list(await cursor.fetchall())
        query = "SELECT id, name, description FROM items ORDER BY id LIMIT $1 OFFSET $2"
        return list(await self.pool.fetch(query, limit, offset))

    async def insert(self, name: str, description: str | None) -> int:
        if SQLITE:
            query = "INSERT INTO items (name, description) VALUES (?, ?)"
            # One connection, one transaction at a time: requests take turns to commit.
            async with self.write_lock:
                row = await self.sqlite.execute_insert(query, (name, description))
                await self.sqlite.commit()
            assert row is not None
            return int(row[0])
        query = "INSERT INTO items (name, description) VALUES ($1, $2) RETURNING id"
        return int(await self.pool.fetchval(query, name, description))


database = Database()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await database.open()
    yield
    await database.close()


app = FastAPI(lifespan=lifespan)


def item(row: Any) -> ItemRead:
    return ItemRead(id=row[0], name=row[1], description=row[2])


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/items/")
async def list_items(
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[ItemRead]:
    return [item(row) for row in await database.page(offset, limit)]


@app.post("/items/", status_code=status.HTTP_201_CREATED)
async def create_item(data: ItemCreate, request: Request, response: Response) -> ItemRead:
    item_id = await database.insert(data.name, data.description)
    response.headers["Location"] = str(request.url_for("read_item", item_id=item_id))
    return ItemRead(id=item_id, **data.model_dump())


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> ItemRead:
    row = await database.one(item_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Item not found")
    return item(row)
