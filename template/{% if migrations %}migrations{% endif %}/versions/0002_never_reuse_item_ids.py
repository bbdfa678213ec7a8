"""Never hand out the id of a deleted item again (SQLite's AUTOINCREMENT).

SQLite cannot add AUTOINCREMENT to a table: batch mode copies the table, rows and all,
into a new one that has it. PostgreSQL's sequences never reuse ids: nothing to do there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def set_autoincrement(enabled: bool) -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "items", recreate="always", table_kwargs={"sqlite_autoincrement": enabled}
    ):
        pass


def upgrade() -> None:
    set_autoincrement(True)


def downgrade() -> None:
    set_autoincrement(False)
