from typing import Annotated

from pydantic import MISSING, BaseModel, ConfigDict, Field

# PostgreSQL cannot store NUL characters in text, so no store accepts them.
WITHOUT_NUL = r"^[^\x00]*$"

Name = Annotated[str, Field(min_length=1, max_length=100, pattern=WITHOUT_NUL)]
Description = Annotated[str, Field(max_length=1000, pattern=WITHOUT_NUL)]


class ItemCreate(BaseModel):
    name: Name
    description: Description | None = None


class ItemUpdate(BaseModel):
    """The fields to change. A field left out keeps its value; `name` cannot be null."""

    name: Name | MISSING = MISSING
    description: Description | MISSING | None = MISSING


class ItemRead(ItemCreate):
    model_config = ConfigDict(from_attributes=True)

    id: int


class Error(BaseModel):
    """The body of every error answer but validation's (422)."""

    detail: str
