"""A request cannot write a log line of its own: what it sends is escaped onto its access line."""

from __future__ import annotations

import io
import logging

from reelhouse.platform.logging import RequestIdFilter

ACCESS_LINE_START = "INFO reelhouse.access"


async def test_a_newline_in_the_path_cannot_forge_an_access_line(make_client):
    async with make_client(LOG_LEVEL="INFO") as client:
        (handler,) = [
            h for h in logging.getLogger("reelhouse").handlers if any(isinstance(f, RequestIdFilter) for f in h.filters)
        ]
        assert isinstance(handler, logging.StreamHandler)
        captured = io.StringIO()
        previous = handler.setStream(captured)
        try:
            forged = "2026-01-01 00:00:00,000 INFO reelhouse.access [-] GET /api/v1/admin/users 200 1.0ms"
            response = await client.get("/api/v1/x%0a" + forged.replace(" ", "%20") + "%0d%00")
        finally:
            handler.setStream(previous)
    assert response.status_code == 404
    lines = captured.getvalue().splitlines()
    access = [line for line in lines if ACCESS_LINE_START in line]
    assert len(access) == 1, lines
    assert access[0].startswith(tuple("0123456789"))  # our timestamp, not the forged one
    assert "/api/v1/x\\n2026-01-01" in access[0]
    assert access[0].endswith(" 404 " + access[0].rsplit(" ", 1)[-1])
    assert "\\r\\x00" in access[0]
    assert not any(line.startswith("2026-01-01 00:00:00,000") for line in lines)
