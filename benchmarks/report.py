"""Turn raw scenario results into the summary rows (figure, ratio to the ceiling, target met) and Markdown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = dict[str, Any]


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _f(value: Any) -> float:
    """A number to compare against a target; NaN (every comparison false) when missing."""
    return float("nan") if value is None else float(value)


def _share_of(value: Any, share: float, ceiling: Any, errors: int) -> Callable[[], bool]:
    return lambda: _f(value) >= share * _f(ceiling) and errors == 0


def _ratio(value: float | None, ceiling: float | None) -> float | None:
    if value is None or not ceiling:
        return None
    return round(value / ceiling, 3)


def _row(  # noqa: PLR0917
    key: str,
    name: str,
    value: float | None,
    unit: str,
    target: str,
    met: Callable[[], bool],
    *,
    ceiling: float | None = None,
    detail: str = "",
) -> Row:
    try:
        ok: bool | None = met() if value is not None else None
    except TypeError:
        ok = None
    return {
        "key": key,
        "name": name,
        "value": value,
        "unit": unit,
        "ceiling": ceiling,
        "ratio_to_ceiling": _ratio(value, ceiling),
        "target": target,
        "met": ok,
        "detail": detail,
    }


def _media_rows(raw: dict[str, Any], ping: float | None) -> list[Row]:
    """Media delivery and the transcode, against their targets."""
    rows: list[Row] = []
    media = raw.get("media") or {}
    value = media.get("requests_per_s")
    errors = (media.get("non_2xx") or 0) + (media.get("socket_errors") or 0)
    bare = media.get("bytes_ceiling_requests_per_s")
    rows.append(
        _row("media", "Media requests of a live stream (a playlist and a 4 s segment in turn)", value, "req/s",
             ">= 50 % of /ping", _share_of(value, 0.5, ping, errors), ceiling=ping,
             detail=_http_detail(media) + (
                 f"; {media.get('playlist_bytes')} B playlist, {media.get('segment_bytes')} B segment; the bare app "
                 f"answering the same bytes from memory: {bare} req/s ({_ratio(value, bare)} of it)" if bare else ""))
    )  # fmt: skip
    keys = raw.get("media_keys") or {}
    value = keys.get("requests_per_s")
    errors = (keys.get("non_2xx") or 0) + (keys.get("socket_errors") or 0)
    rows.append(
        _row("media_keys", "AES-128 key requests of a live stream (encrypted media)", value, "req/s",
             ">= 50 % of /ping", _share_of(value, 0.5, ping, errors), ceiling=ping, detail=_http_detail(keys))
    )  # fmt: skip
    offload = raw.get("media_offload") or {}
    share = offload.get("offloaded_share")
    rows.append(
        _row("media_offload", "Media bytes not sent by the API (encrypted segments on a CDN stand-in)",
             None if share is None else round(100 * share, 2), "%", "100 % of segment bytes; only playlists and keys",
             lambda: offload.get("segment_bytes_from_api") == 0,
             detail=f"a whole playback: {offload.get('requests')} requests, {offload.get('api_bytes')} B from the API "
             f"(master and media playlists, {offload.get('keys')} keys), {offload.get('public_bytes')} B from the "
             "file server over the media store")
    )  # fmt: skip
    transcode = raw.get("transcode") or {}
    ratio = transcode.get("speed_ratio")
    rows.append(
        _row("transcode", "Transcode speed: the ffmpeg CLI's time for the same ladder / ours", ratio, "x",
             ">= 0.9", lambda: _f(ratio) >= 0.9 and bool(transcode.get("ffmpeg_ok")),
             detail=f"{transcode.get('source_seconds')} s of 1280x720 at preset {transcode.get('preset')}: ours "
             f"{transcode.get('ours_seconds')} s, ffmpeg {transcode.get('ffmpeg_seconds')} s "
             f"(CPU {transcode.get('ours_cpu_seconds')} s and {transcode.get('ffmpeg_cpu_seconds')} s, load average "
             f"{transcode.get('load_average_before')} before), {transcode.get('realtime_factor')}x real time")
    )  # fmt: skip
    return rows


def scenarios(raw: dict[str, Any]) -> list[Row]:
    ping = _get(raw, "ceiling_ping", "requests_per_s")
    echo = _get(raw, "ceiling_ws_echo", "round_trips_per_s")
    rows: list[Row] = [
        _row("ceiling_ping", "Ceiling: bare Litestar GET /ping", ping, "req/s", "reference", lambda: True,
             ceiling=ping, detail=_http_detail(raw.get("ceiling_ping"))),
        _row("ceiling_ws_echo", "Ceiling: bare Litestar websocket echo", echo, "round trips/s", "reference",
             lambda: True, ceiling=echo, detail=_ws_detail(raw.get("ceiling_ws_echo"))),
    ]  # fmt: skip
    for key, name, share in (
        ("health", "GET /health (liveness)", 0.80),
        ("plans", "GET /api/v1/plans (anonymous)", 0.50),
        ("content", "GET /api/v1/content?limit=20 (anonymous)", 0.25),
        ("profile", "GET /api/v1/users/profile (signed in)", 0.25),
    ):
        value = _get(raw, key, "requests_per_s")
        errors = (_get(raw, key, "non_2xx") or 0) + (_get(raw, key, "socket_errors") or 0)
        rows.append(
            _row(key, name, value, "req/s", f">= {int(share * 100)} % of /ping",
                 _share_of(value, share, ping, errors),
                 ceiling=ping, detail=_http_detail(raw.get(key)))
        )  # fmt: skip
    for key, name, share, target in (
        (
            "history_read",
            "GET /api/v1/watch-history?limit=10 (signed in, 1,000 users)",
            0.08,
            ">= 8 % of /ping, p99 < 100 ms",
        ),
        ("history_write", "POST /api/v1/watch-history (1,000 users, 50 titles)", 0.06, ">= 6 % of /ping, p99 < 100 ms"),
    ):
        figures = raw.get(key) or {}
        value = figures.get("requests_per_s")
        errors = (figures.get("non_2xx") or 0) + (figures.get("socket_errors") or 0)
        share_met = _share_of(value, share, ping, errors)

        def fast(met: Callable[[], bool] = share_met, figures: dict[str, Any] = figures) -> bool:
            return met() and _f(figures.get("p99_ms")) < 100

        rows.append(
            _row(key, name, value, "req/s", target, fast, ceiling=ping, detail=_http_detail(figures))
        )  # fmt: skip
    hot = raw.get("history_hot") or {}
    rows.append(
        _row("history_hot", "POST /api/v1/watch-history, all on one user's one title (the one-row hot spot)",
             hot.get("requests_per_s"), "req/s", "reported beside the spread figure", lambda: True, ceiling=ping,
             detail=_http_detail(hot))
    )  # fmt: skip
    admission = raw.get("admission") or {}
    value = admission.get("requests_per_s")
    rows.append(
        _row("admission", "POST /api/v1/playback/sessions (admission incl. evictions)", value, "starts/s",
             ">= 1,000/s, p99 < 50 ms",
             lambda: _f(value) >= 1000 and _f(admission.get("p99_ms")) < 50 and admission.get("non_2xx", 0) == 0,
             ceiling=ping, detail=_http_detail(admission))
    )  # fmt: skip
    two = raw.get("admission_two_instances") or {}
    rows.append(
        _row("admission_two_instances", "The same admission on two API processes (32 connections each)",
             two.get("requests_per_s"), "starts/s", "reported: how admission grows with processes", lambda: True,
             ceiling=ping,
             detail=f"p50 {two.get('p50_ms')} ms, p99 {two.get('p99_ms')} ms (the slower process), per process "
             f"{two.get('per_instance')} starts/s, non-2xx {two.get('non_2xx')}, "
             f"server CPU {two.get('server_cpu_percent')} %")
    )  # fmt: skip
    rows.extend(_media_rows(raw, ping))
    memory = raw.get("players_memory") or {}
    kib = memory.get("kib_per_connection")
    rows.append(
        _row("players_memory", f"{memory.get('sockets', '?')} players connected: server memory per connection", kib,
             "KiB/conn", "<= 48 KB per connection",
             lambda: _f(kib) * 1024 <= 48_000
             and memory.get("join_errors", 1) == 0 and memory.get("not_joined", 1) == 0,
             detail=f"RSS {memory.get('rss_before_kib')} -> {memory.get('rss_after_kib')} KiB; "
             f"{memory.get('join_errors')} start/connect errors, {memory.get('not_joined')} not admitted within the "
             f"join limit, joined in {memory.get('join_seconds')} s")
    )  # fmt: skip
    beats = raw.get("heartbeats") or {}
    p99 = beats.get("p99_ms")
    rows.append(
        _row("heartbeats", f"Heartbeats at {beats.get('rate_per_s', '?')}/s across {beats.get('sockets', '?')} sockets",
             p99, "ms p99", "p99 < 5 ms, 0 lost", lambda: _f(p99) < 5 and beats.get("lost", 1) == 0,
             detail=f"p50 {beats.get('p50_ms')} ms, max {beats.get('max_ms')} ms, sent {beats.get('sent')}, "
             f"lost {beats.get('lost')}, sockets closed meanwhile {beats.get('sockets_closed_meanwhile')}, "
             f"server CPU {beats.get('server_cpu_percent')} %, "
             f"load generator CPU {beats.get('loader_cpu_percent')} %")
    )  # fmt: skip
    for key in ("admission_with_players", "admission_with_fewer_players"):
        probe = raw.get(key) or {}
        rows.append(
            _row(key, f"One start's latency with {probe.get('players', '?')} players connected (20 starts/s)",
                 probe.get("p99_ms"), "ms p99", "reported: how admission grows with players", lambda: True,
                 detail=f"{probe.get('count')} starts, p50 {probe.get('p50_ms')} ms, max {probe.get('max_ms')} ms, "
                 f"statuses {probe.get('statuses')}")
        )  # fmt: skip
    for key, where, target in (
        ("heartbeats_fewer", "(a tenth of the players)", "reported: how the tail grows with players"),
        ("heartbeats_two_instances", "on two API processes", "reported: how the tail changes with processes"),
    ):
        group = raw.get(key) or {}
        rows.append(
            _row(key,
                 f"Heartbeats at {group.get('rate_per_s', '?')}/s across {group.get('sockets', '?')} sockets {where}",
                 group.get("p99_ms"), "ms p99", target, lambda: True,
                 detail=f"p50 {group.get('p50_ms')} ms, max {group.get('max_ms')} ms, sent {group.get('sent')}, lost "
                 f"{group.get('lost')}, server CPU {group.get('server_cpu_percent')} %")
        )  # fmt: skip
    flood = raw.get("heartbeat_flood") or {}
    value = flood.get("round_trips_per_s")
    rows.append(
        _row("heartbeat_flood", "Heartbeat flood (closed loop)", value, "round trips/s",
             ">= 40 % of websocket echo", lambda: _f(value) >= 0.4 * _f(echo) and flood.get("errors", 1) == 0,
             ceiling=echo, detail=_ws_detail(flood))
    )  # fmt: skip
    eviction = raw.get("eviction") or {}
    p99 = _get(eviction, "from_request", "p99_ms")
    rows.append(
        _row("eviction", "Eviction notice across two instances (start sent -> `terminated`)", p99, "ms p99",
             "p99 < 20 ms", lambda: _f(p99) < 20 and eviction.get("failures", 1) == 0,
             detail=f"{eviction.get('samples')} samples, {eviction.get('failures')} failures; p50 "
             f"{_get(eviction, 'from_request', 'p50_ms')} ms; from the start's response: p99 "
             f"{_get(eviction, 'from_response', 'p99_ms')} ms; close codes {eviction.get('close_codes')}")
    )  # fmt: skip
    under = raw.get("logins_under_load") or {}
    p99 = _get(under, "heartbeats", "p99_ms")
    logins = under.get("logins") or {}
    rows.append(
        _row("logins_under_load",
             f"Logins at {logins.get('rate_per_s', '?')}/s while {_get(under, 'heartbeats', 'sockets')} players "
             "heartbeat: heartbeat p99", p99, "ms p99", "heartbeat p99 < 10 ms",
             lambda: _f(p99) < 10 and _get(under, "heartbeats", "lost") == 0,
             detail=f"heartbeats {_get(under, 'heartbeats', 'rate_per_s')}/s, lost "
             f"{_get(under, 'heartbeats', 'lost')}; logins {logins.get('statuses')}, p50 {logins.get('p50_ms')} ms, "
             f"p99 {logins.get('p99_ms')} ms; server CPU {under.get('server_cpu_percent')} %, "
             f"load generator CPU {under.get('loader_cpu_percent')} %")
    )  # fmt: skip
    writes = raw.get("db_writes") or {}
    value = writes.get("row_writes_per_session_per_flush_period")
    rows.append(
        _row("db_writes", "Database row writes per session per progress_flush_seconds", value, "writes",
             "<= 1 per progress_flush_seconds per session", lambda: _f(value) <= 1,
             detail=f"{writes.get('row_writes')} row writes and {writes.get('commits')} commits for "
             f"{writes.get('heartbeats')} heartbeats from {writes.get('sessions')} sessions in "
             f"{writes.get('seconds')} s (flush every {writes.get('progress_flush_seconds')} s); "
             f"{writes.get('commits_per_heartbeat')} commits per heartbeat")
    )  # fmt: skip
    return rows


def _http_detail(data: dict[str, Any] | None) -> str:
    if not data:
        return ""
    return (
        f"p50 {data.get('p50_ms')} ms, p99 {data.get('p99_ms')} ms, {data.get('connections')} connections, "
        f"non-2xx {data.get('non_2xx')}, server CPU {data.get('server_cpu_percent')} %"
    )


def _ws_detail(data: dict[str, Any] | None) -> str:
    if not data:
        return ""
    return (
        f"{data.get('sockets')} sockets, p50 {data.get('p50_ms')} ms, p99 {data.get('p99_ms')} ms, "
        f"errors {data.get('errors')}, server CPU {data.get('server_cpu_percent')} %"
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return str(value)


def table(rows: list[Row]) -> str:
    lines = [
        "| Scenario | Figure | Ratio to ceiling | Target | Met |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row["ratio_to_ceiling"]
        met = {True: "yes", False: "**no**", None: "n/a"}[row["met"]]
        if row["target"] == "reference":
            met = "-"
        lines.append(
            f"| {row['name']} | {_fmt(row['value'])} {row['unit']} | "
            f"{'-' if ratio is None else f'{ratio:.0%}'} | {row['target']} | {met} |"
        )
    return "\n".join(lines)


def markdown(summary: dict[str, Any]) -> str:
    machine = summary["machine"]
    settings = summary["settings"]
    parts = [
        f"# Reelhouse benchmark ({summary['mode']})",
        "",
        f"Run {summary['generated_at']} with `{summary['command']}` on {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB, Python {machine['python']}. Server: ENVIRONMENT={settings['environment']}, "
        f"{settings['workers']} worker, {settings['server']}. Load generators share the machine.",
        "",
        table(summary["scenarios"]),
        "",
        "## Details",
        "",
    ]
    parts += [f"- **{row['name']}**: {row['detail']}" for row in summary["scenarios"] if row["detail"]]
    parts += ["", "## Settings that differ from production defaults", ""]
    parts += [f"- {item}" for item in settings["deviations"]]
    seeded = settings["seeded"]
    parts += [
        "",
        f"Data: {seeded['users']} users, {seeded['titles']} titles, {seeded['watch_history_rows']} watch-history rows "
        f"(seeded in {settings['setup_seconds']} s incl. migrations).",
    ]
    parts += profile_sections(summary["raw"].get("_profiles") or {})
    if summary["notes"]:
        parts += ["", "## Notes", ""] + [f"- {note}" for note in summary["notes"]]
    return "\n".join(parts) + "\n"


def profile_sections(profiles: dict[str, Any]) -> list[str]:
    """Where the API's time went in each profiled scenario (``scripts/bench --profile``)."""
    if not profiles:
        return []
    parts = ["", "## Profiles (py-spy, API process)", ""]
    for name, profile in profiles.items():
        if not profile["samples"]:
            continue
        parts += [f"**{name}** ({profile['samples']} samples)", ""]
        parts.append(
            "- own code, inclusive: "
            + "; ".join(f"{item['frame']} {item['percent']}%" for item in profile["own_inclusive"][:8])
        )
        parts.append(
            "- leaf functions: " + "; ".join(f"{item['frame']} {item['percent']}%" for item in profile["self"][:8])
        )
        parts.append("")
    return parts
