"""Small helpers every integration test may use: sign up, sign in, auth headers, make an admin.

Each helper asserts the call succeeded, so a test reads as the behaviour it proves.

Litestar's test client runs the app in an event loop of its own (a blocking portal)
and blocks on every request. Two consequences: code that uses the app's database
engine or Redis client must run in that loop (:func:`in_app_loop`), and
``asyncio.gather`` over ``client.get(...)`` sends requests one at a time, so use
:func:`send_concurrently` to make them really overlap.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TypeVar

import httpx
import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession

PASSWORD = "correct horse battery"
ADMIN_EMAIL = "admin@example.com"

Client = AsyncTestClient[Any]
T = TypeVar("T")


def tool_missing(reason: str) -> NoReturn:
    """A tool or package the test needs is not there: a skip on a developer's machine, a failure
    under CI, where ``scripts/test`` installs everything the suite needs."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def in_app_loop(client: Client, function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``await function(*args)`` in the app's event loop, where its engine and Redis client live."""
    return client.blocking_portal.call(function, *args)


def send_concurrently(client: Client, requests: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
    """Send ``(method, url, httpx keyword arguments)`` requests all at once; responses in the same order."""

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url=str(client.base_url)) as concurrent:
            return list(await asyncio.gather(*(concurrent.request(m, url, **kw) for m, url, kw in requests)))

    return in_app_loop(client, send_all)


def auth(token: str) -> dict[str, str]:
    """The ``Authorization`` header for an access (or, on GET /auth/refresh, a refresh) token."""
    return {"Authorization": f"Bearer {token}"}


async def register(
    client: Client, email: str = "ada@example.com", password: str = PASSWORD, name: str = "Ada", **fields: Any
) -> dict[str, Any]:
    """Create an account; returns ``{token, refresh, user, ...}``."""
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "name": name, **fields}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(
    client: Client, email: str = "ada@example.com", password: str = PASSWORD, **fields: Any
) -> dict[str, Any]:
    """Sign in (a new device each time); returns ``{token, refresh, user, ...}``."""
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password, **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def make_admin(client: Client, email: str = ADMIN_EMAIL, password: str = PASSWORD) -> dict[str, Any]:
    """Create (or promote) an administrator through the account service, then sign in as them."""
    components = client.app.state.components

    async def ensure_admin() -> None:
        async with components.units.begin() as uow:
            await components.accounts(uow).ensure_admin(email, password)

    in_app_loop(client, ensure_admin)
    return await login(client, email, password)


async def profile_status(client: Client, token: str) -> int:
    """The status of GET /users/profile with ``token``: 200 while the token works, 401 once it stops."""
    return (await client.get("/api/v1/users/profile", headers=auth(token))).status_code


async def refresh_status(client: Client, refresh: str) -> int:
    """The status of rotating ``refresh`` (it is spent when this returns 200)."""
    return (await client.post("/api/v1/auth/refresh", json={"refresh": refresh})).status_code


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body of a response that must have ``status``; the request and body when not."""
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


@asynccontextmanager
async def session_scope(config: SQLAlchemyAsyncConfig) -> AsyncIterator[AsyncSession]:
    """A session for a test's own reads and writes: committed at the end, rolled back on error."""
    async with config.create_session_maker()() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
