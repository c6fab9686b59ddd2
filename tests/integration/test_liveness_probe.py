"""Liveness probes are answered in front of the middleware, exactly as the route would answer them."""

from __future__ import annotations

from typing import Any

from reelhouse.platform.health import answer_liveness_probes


def http_scope(method: str = "GET", path: str = "/health", query: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "query_string": query, "headers": [], "state": {}}


async def answer_of(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_a_plain_probe_never_reaches_the_app():
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    messages = await answer_of(answer_liveness_probes(app), http_scope())

    assert reached == []
    assert messages[0]["status"] == 200
    assert messages[1]["body"] == b'{"status":"healthy"}'


async def test_everything_else_takes_the_ordinary_path():
    reached: list[tuple[str, str, bytes]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append((scope["method"], scope["path"], scope["query_string"]))

    probed = answer_liveness_probes(app)
    for scope in (
        http_scope("HEAD"),
        http_scope("PUT"),
        http_scope(query=b"verbose=1"),
        http_scope(path="/health/"),
        http_scope(path="/ready"),
        {**http_scope(), "type": "websocket"},
    ):
        await answer_of(probed, scope)

    assert len(reached) == 6


async def test_the_shortcut_answers_as_the_route_does(client):
    """``/health?from=route`` takes the whole request path to the controller; ``/health`` does not."""
    shortcut = await client.get("/health", headers={"X-Request-ID": "probe-1"})
    routed = await client.get("/health?from=route", headers={"X-Request-ID": "probe-2"})

    assert shortcut.status_code == routed.status_code == 200
    assert shortcut.content == routed.content
    assert set(shortcut.headers) == set(routed.headers)
    for name in ("content-type", "x-content-type-options", "x-frame-options", "referrer-policy"):
        assert shortcut.headers[name] == routed.headers[name], name
    assert shortcut.headers["x-request-id"] == "probe-1"
