from fastapi.testclient import TestClient


def create(client: TestClient, name: str = "Widget") -> dict[str, object]:
    response = client.post("/items/", json={"name": name, "description": "A thing"})
    assert response.status_code == 201
    body: dict[str, object] = response.json()
    return body


def test_create_returns_the_item_and_its_location(client: TestClient) -> None:
    response = client.post("/items/", json={"name": "Widget"})

    assert response.status_code == 201
    item = response.json()
    assert item == {"id": item["id"], "name": "Widget", "description": None}
    assert response.headers["location"] == f"http://testserver/items/{item['id']}"


def test_read_returns_a_created_item(client: TestClient) -> None:
    item = create(client)

    response = client.get(f"/items/{item['id']}")

    assert response.status_code == 200
    assert response.json() == item


def test_list_pages_through_items_in_creation_order(client: TestClient) -> None:
    names = [create(client, f"Item {n}")["name"] for n in range(3)]

    first_page = client.get("/items/", params={"limit": 2}).json()
    second_page = client.get("/items/", params={"offset": 2, "limit": 2}).json()

    assert [item["name"] for item in first_page + second_page] == names


def test_update_changes_only_the_given_fields(client: TestClient) -> None:
    item = create(client)

    response = client.patch(f"/items/{item['id']}", json={"name": "Renamed"})

    assert response.status_code == 200
    assert response.json() == {**item, "name": "Renamed"}
    assert client.get(f"/items/{item['id']}").json()["name"] == "Renamed"


def test_delete_removes_the_item(client: TestClient) -> None:
    item = create(client)

    assert client.delete(f"/items/{item['id']}").status_code == 204
    assert client.get(f"/items/{item['id']}").status_code == 404


def test_invalid_item_is_rejected_with_422(client: TestClient) -> None:
    response = client.post("/items/", json={"name": ""})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]


def test_missing_item_is_404_for_every_method(client: TestClient) -> None:
    assert client.get("/items/999").status_code == 404
    assert client.patch("/items/999", json={"name": "x"}).status_code == 404
    assert client.delete("/items/999").status_code == 404


def test_collection_without_trailing_slash_redirects(client: TestClient) -> None:
    response = client.get("/items", follow_redirects=False)

    assert response.status_code == 307
    assert response.headers["location"] == "http://testserver/items/"
