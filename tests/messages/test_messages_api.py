import httpx
import pytest

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_create_read_update_delete_message(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/messages", json={"text": "Привет"})
    assert created.status_code == 201
    body = created.json()
    assert body["text"] == "Привет"
    assert (body["length"], body["encoding"], body["segments"]) == (6, "UCS-2", 1)

    message_url = f"/api/v1/messages/{body['id']}"
    assert (await client.get(message_url)).json()["text"] == "Привет"

    updated = await client.patch(message_url, json={"text": "Hello"})
    assert updated.status_code == 200
    assert updated.json()["encoding"] == "GSM-7"

    assert (await client.delete(message_url)).status_code == 204
    missing = await client.get(message_url)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["detail"] == f"message {body['id']} does not exist"


@pytest.mark.parametrize(
    "payload",
    [{"text": ""}, {"text": "x" * 1601}, {}, {"text": "ok", "colour": "red"}, {"text": 5}],
)
async def test_invalid_message_is_422_and_stores_nothing(
    client: httpx.AsyncClient, payload: dict[str, object]
) -> None:
    response = await client.post("/api/v1/messages", json=payload)
    assert response.status_code == 422
    problem = response.json()
    assert problem["status"] == 422
    assert problem["errors"]
    assert all("loc" in e and "msg" in e for e in problem["errors"])
    assert (await client.get("/api/v1/messages")).json()["items"] == []


async def test_message_list_pages_through_everything(client: httpx.AsyncClient) -> None:
    for number in range(7):
        await client.post("/api/v1/messages", json={"text": f"text {number}"})
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/messages", params=params)).json()
        seen += [item["text"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"text {number}" for number in range(7)]
    assert pages == 3


async def test_bad_cursor_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/messages", params={"cursor": "garbage!"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]
