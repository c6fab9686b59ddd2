"""Log lines never carry query strings (the playback websocket's token travels in one)."""

from __future__ import annotations

import logging

from reelhouse.platform.logging import StripQueryStrings, configure_logging


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, message, args, None)


def test_a_websocket_handshake_line_keeps_the_path_and_drops_the_token():
    line = record('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/api/v1/playback/ws?token=eyJsecret")
    assert StripQueryStrings().filter(line)
    assert "eyJsecret" not in line.getMessage()
    assert "/api/v1/playback/ws" in line.getMessage()


def test_lines_without_a_query_are_untouched():
    line = record("Started server process [%d]", 42)
    StripQueryStrings().filter(line)
    assert line.getMessage() == "Started server process [42]"


def test_configure_logging_installs_the_filter_on_the_servers_loggers():
    configure_logging("INFO")
    for name in ("uvicorn.error", "uvicorn.access"):
        assert any(isinstance(f, StripQueryStrings) for f in logging.getLogger(name).filters)
