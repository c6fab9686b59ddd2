from __future__ import annotations


async def test_health_answers_healthy(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


async def test_register_then_read_profile(client):
    response = await client.post(
        "/api/v1/auth/register", json={"email": "Ada@Example.com", "password": "correct horse", "name": "Ada"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user"]["email"] == "ada@example.com"
    profile = await client.get("/api/v1/users/profile", headers={"Authorization": f"Bearer {body['token']}"})
    assert profile.status_code == 200
    assert profile.json()["name"] == "Ada"
