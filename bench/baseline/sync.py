"""The sync-session baseline: the pattern of the best-known FastAPI template, a sync
SQLAlchemy session per request from a `def` dependency, and `def` routes, both run in
FastAPI's threadpool, over the generated app's model (sqlite3 for SQLite, psycopg for
PostgreSQL).

DATABASE_URL is the generated app's URL; its async driver is swapped for the sync one.
"""

import os
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from schemas import ItemCreate, ItemRead
from sqlalchemy import MetaData, String, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

URL = make_url(os.environ["DATABASE_URL"])
SYNC_DRIVER = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}
engine = create_engine(URL.set(drivername=SYNC_DRIVER[URL.get_backend_name()]))


class Base(DeclarativeBase):
    metadata = MetaData()


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(1000))


def get_session() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/items/")
def list_items(
    session: SessionDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[ItemRead]:
    rows = session.scalars(select(Item).order_by(Item.id).offset(offset).limit(limit))
    return [ItemRead.model_validate(row) for row in rows]


@app.post("/items/", status_code=status.HTTP_201_CREATED)
def create_item(
    data: ItemCreate, session: SessionDep, request: Request, response: Response
) -> ItemRead:
    item = Item(**data.model_dump())
    session.add(item)
    session.commit()
    session.refresh(item)
    response.headers["Location"] = str(request.url_for("read_item", item_id=item.id))
    return ItemRead.model_validate(item)


@app.get("/items/{item_id}")
def read_item(item_id: int, session: SessionDep) -> ItemRead:
    item = session.get(Item, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Item not found")
    return ItemRead.model_validate(item)
