"""Log lines never carry query strings (the playback websocket's token travels in one)."""

from __future__ import annotations

import logging

from reelhouse.platform.logging import EscapeControlCharacters, RequestIdFilter, StripQueryStrings, configure_logging


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


def test_control_characters_in_a_message_are_escaped_onto_one_line():
    forged = "/api/v1/x\n2026-01-01 00:00:00,000 INFO reelhouse.access [-] GET /admin 200"
    line = record("%s %s", "GET", forged + "\x00\u202e\r\t")
    assert EscapeControlCharacters().filter(line)
    message = line.getMessage()
    assert "\n" not in message
    assert message == "GET " + forged.replace("\n", "\\n") + "\\x00\\u202e\\r\\t"


def test_plain_messages_are_untouched():
    line = record("started on port %d", 8000)
    EscapeControlCharacters().filter(line)
    assert line.getMessage() == "started on port 8000"


def test_configure_logging_escapes_on_the_servers_loggers_and_ours():
    configure_logging("INFO")
    for name in ("uvicorn.error", "uvicorn.access"):
        assert any(isinstance(f, EscapeControlCharacters) for f in logging.getLogger(name).filters)
    (ours,) = [
        h for h in logging.getLogger("reelhouse").handlers if any(isinstance(f, RequestIdFilter) for f in h.filters)
    ]
    assert any(isinstance(f, EscapeControlCharacters) for f in ours.filters)
