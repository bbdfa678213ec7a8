"""The OpenAPI document lists the error answers that the endpoints really give."""

import pytest
from fastapi.testclient import TestClient

ERROR = {"$ref": "#/components/schemas/Error"}
VALIDATION_ERROR = {"$ref": "#/components/schemas/HTTPValidationError"}


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/items/", "get", {"200", "422"}),
        ("/items/", "post", {"201", "400", "413", "422"}),
        ("/items/{item_id}", "get", {"200", "404", "422"}),
        ("/items/{item_id}", "patch", {"200", "400", "404", "413", "422"}),
        ("/items/{item_id}", "delete", {"204", "404", "422"}),
    ],
)
def test_each_items_operation_documents_its_error_answers(
    client: TestClient, path: str, method: str, statuses: set[str]
) -> None:
    responses = client.get("/openapi.json").json()["paths"][path][method]["responses"]

    assert set(responses) == statuses
    for status in statuses & {"400", "404", "413"}:
        assert responses[status]["content"]["application/json"]["schema"] == ERROR
    assert responses["422"]["content"]["application/json"]["schema"] == VALIDATION_ERROR


def test_the_patch_schema_says_name_cannot_be_null(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]

    update = schemas["ItemUpdate"]["properties"]
    assert update["name"]["type"] == "string"
    assert {"type": "null"} in update["description"]["anyOf"]
    assert schemas["Error"]["required"] == ["detail"]
