"""Settings: defaults from ``litestar.toml`` < ``.env`` < the process environment.

Each concern has one frozen dataclass. A field's environment variable name is
given where it is declared (``setting("JWT_SECRET", ...)``); the same field is
read from ``litestar.toml`` under ``[section] field_name``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from functools import cached_property, lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from dotenv import dotenv_values

Environment = Literal["development", "test", "production"]

#: Passwords that must never reach production (the demo defaults and common weak choices).
DEFAULT_PASSWORDS = frozenset({"", "admin", "password", "changeme", "change-me", "postgres", "reelhouse"})
MIN_JWT_SECRET_BYTES = 32
MIN_ADMIN_PASSWORD_LENGTH = 12
MEDIA_ENCRYPTIONS = ("none", "aes-128")
MAX_KEY_PERIOD_SEGMENTS = 100
MIN_METRICS_TOKEN_LENGTH = 24


class SettingsError(RuntimeError):
    """Raised when the configuration cannot be used; the message says why."""


def setting(env: str, default: Any = MISSING, *, secret: bool = False) -> Any:
    # A secret is left out of the settings' repr too, so a logged or printed settings object never shows it.
    if default is MISSING:
        return field(metadata={"env": env, "secret": secret}, repr=not secret)
    if isinstance(default, list | dict):
        return field(
            default_factory=lambda: type(default)(default), metadata={"env": env, "secret": secret}, repr=not secret
        )
    return field(default=default, metadata={"env": env, "secret": secret}, repr=not secret)


@dataclass(frozen=True)
class ServerSettings:
    host: str = setting("HOST", "127.0.0.1")
    port: int = setting("PORT", 8000)
    workers: int = setting("WEB_CONCURRENCY", 1)
    public_url: str = setting("PUBLIC_URL", "")
    #: Host names requests may use (``*.example.com`` for subdomains); empty: any.
    allowed_hosts: list[str] = setting("ALLOWED_HOSTS", [])
    request_max_body_bytes: int = setting("REQUEST_MAX_BODY_BYTES", 1_048_576)
    cors_allowed_origins: list[str] = setting("CORS_ALLOWED_ORIGINS", [])
    trusted_proxies: list[str] = setting("TRUSTED_PROXIES", [])
    log_level: str = setting("LOG_LEVEL", "INFO")
    #: How long each instance answers anonymous plan and catalog reads from memory; 0: never.
    public_cache_seconds: int = setting("PUBLIC_CACHE_SECONDS", 30)
    #: ``Authorization: Bearer <token>`` that /metrics requires; empty: /metrics answers loopback only.
    metrics_token: str = setting("METRICS_TOKEN", "", secret=True)

    @cached_property
    def trusted_proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        return [ip_network(item, strict=False) for item in self.trusted_proxies]


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = setting("DATABASE_URL", "", secret=True)
    echo: bool = setting("DATABASE_ECHO", False)
    pool_size: int = setting("DATABASE_POOL_SIZE", 20)
    max_overflow: int = setting("DATABASE_MAX_OVERFLOW", 0)
    migrate_on_startup: bool = setting("DATABASE_MIGRATE_ON_STARTUP", True)

    @property
    def is_postgresql(self) -> bool:
        return self.url.startswith("postgresql+asyncpg://")


@dataclass(frozen=True)
class RedisSettings:
    url: str = setting("REDIS_URL", "", secret=True)
    key_prefix: str = setting("REDIS_KEY_PREFIX", "rh")
    #: REDIS_URL names a Redis Cluster (as a redis+cluster:// or rediss+cluster:// URL also says).
    cluster: bool = setting("REDIS_CLUSTER", False)

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    @property
    def target(self) -> RedisTarget:
        return redis_target(self.url, cluster=self.cluster)


#: URL schemes that name a Redis Cluster, and the scheme redis-py is given for each node.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_REDIS_SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class RedisTarget:
    """Where REDIS_URL points: one Redis, or a cluster reached through the nodes it names."""

    #: A redis:// or rediss:// URL redis-py understands; for a cluster, the first node's.
    url: str
    cluster: bool
    #: A cluster's startup nodes, (host, port) each: every node REDIS_URL lists.
    nodes: tuple[tuple[str, int], ...] = ()


def redis_target(url: str, *, cluster: bool) -> RedisTarget:
    """Read REDIS_URL: ``redis+cluster://[user:password@]host:port[,host:port...][?options]`` (or
    ``REDIS_CLUSTER=true`` with a plain URL) names a cluster; anything else one Redis."""
    scheme, separator, rest = url.partition("://")
    if scheme in CLUSTER_SCHEMES:
        cluster, scheme = True, CLUSTER_SCHEMES[scheme]
    if not separator or scheme not in _REDIS_SCHEMES:
        raise SettingsError(
            "REDIS_URL must be a redis://, rediss://, unix://, redis+cluster:// or rediss+cluster:// URL"
        )
    if not cluster:
        return RedisTarget(url=url, cluster=False)
    if scheme == "unix":
        raise SettingsError("REDIS_URL: a Redis Cluster is reached over TCP, not a unix socket")
    end = min((rest.find(mark) for mark in "/?#" if mark in rest), default=len(rest))
    location, tail = rest[:end], rest[end:]
    credentials, at, hosts = location.rpartition("@")
    database = urlsplit(f"{scheme}://x{tail}").path.strip("/")
    if database not in ("", "0"):
        raise SettingsError(f"REDIS_URL: a Redis Cluster has only database 0, not {database!r}")
    nodes: list[tuple[str, int]] = []
    for host in hosts.split(","):
        try:
            parsed = urlsplit(f"{scheme}://{host.strip()}")
            port = parsed.port or 6379
        except ValueError:
            parsed, port = None, 0
        if parsed is None or not parsed.hostname or port < 1:
            raise SettingsError(f"REDIS_URL: {host.strip()!r} is not a host:port of a cluster node")
        nodes.append((parsed.hostname, port))
    first = hosts.split(",")[0].strip()
    return RedisTarget(url=f"{scheme}://{credentials}{at}{first}{tail}", cluster=True, nodes=tuple(nodes))


@dataclass(frozen=True)
class AuthSettings:
    jwt_secret: str = setting("JWT_SECRET", "", secret=True)
    jwt_algorithm: str = setting("JWT_ALGORITHM", "HS256")
    jwt_issuer: str = setting("JWT_ISSUER", "reelhouse")
    jwt_audience: str = setting("JWT_AUDIENCE", "reelhouse-api")
    jwt_leeway_seconds: int = setting("JWT_LEEWAY_SECONDS", 30)
    access_token_ttl_seconds: int = setting("ACCESS_TOKEN_TTL_SECONDS", 900)
    refresh_token_ttl_days: int = setting("REFRESH_TOKEN_TTL_DAYS", 30)
    argon2_memory_kib: int = setting("ARGON2_MEMORY_KIB", 19456)
    argon2_time_cost: int = setting("ARGON2_TIME_COST", 2)
    argon2_parallelism: int = setting("ARGON2_PARALLELISM", 1)
    max_concurrent_hashes: int = setting("MAX_CONCURRENT_HASHES", 4)
    #: Password attempts per account from one client network (IPv4 address or IPv6 /64).
    login_max_failures_per_account: int = setting("LOGIN_MAX_FAILURES_PER_ACCOUNT", 5)
    #: Failed sign-ins per account from everywhere together: a ceiling against distributed guessing.
    login_max_failures_per_account_total: int = setting("LOGIN_MAX_FAILURES_PER_ACCOUNT_TOTAL", 100)
    login_max_failures_per_ip: int = setting("LOGIN_MAX_FAILURES_PER_IP", 50)
    login_failure_window_seconds: int = setting("LOGIN_FAILURE_WINDOW_SECONDS", 900)


@dataclass(frozen=True)
class RateLimitSettings:
    enabled: bool = setting("RATE_LIMIT_ENABLED", True)
    anonymous_per_minute: int = setting("RATE_LIMIT_ANONYMOUS_PER_MINUTE", 60)
    user_per_minute: int = setting("RATE_LIMIT_USER_PER_MINUTE", 300)
    auth_per_minute: int = setting("RATE_LIMIT_AUTH_PER_MINUTE", 10)
    #: Readiness probes (/ready) per client IP.
    probe_per_minute: int = setting("RATE_LIMIT_PROBE_PER_MINUTE", 120)


@dataclass(frozen=True)
class AdminSettings:
    email: str = setting("ADMIN_EMAIL", "")
    password: str = setting("ADMIN_PASSWORD", "", secret=True)


@dataclass(frozen=True)
class PlaybackSettings:
    heartbeat_interval_seconds: int = setting("HEARTBEAT_INTERVAL_SECONDS", 15)
    heartbeat_grace_intervals: int = setting("HEARTBEAT_GRACE_INTERVALS", 3)
    progress_flush_seconds: int = setting("PROGRESS_FLUSH_SECONDS", 30)
    #: Whole months of playback events kept in the database; older months go to the archive.
    events_retention_months: int = setting("PLAYBACK_EVENTS_RETENTION_MONTHS", 6)
    free_max_devices: int = setting("FREE_MAX_DEVICES", 1)
    #: Resume rules (applied in reelhouse.playback.history): below this share watched, no resume point.
    resume_min_percent: float = setting("RESUME_MIN_PERCENT", 5.0)
    #: At or past this share watched (or past the credits), a title counts as completed.
    completion_percent: float = setting("COMPLETION_PERCENT", 90.0)
    #: Titles shorter than this never offer a resume point.
    resume_min_duration_seconds: int = setting("RESUME_MIN_DURATION_SECONDS", 300)
    #: How long a playback token opens the websocket (reconnects included); a new start issues a new one.
    playback_token_ttl_seconds: int = setting("PLAYBACK_TOKEN_TTL_SECONDS", 1800)
    #: How long a signed stream URL works (it also stops when its session ends).
    stream_url_ttl_seconds: int = setting("STREAM_URL_TTL_SECONDS", 21600)
    #: Where media lives: uploads in progress and processed assets (<MEDIA_DIR>/assets/...).
    media_dir: str = setting("MEDIA_DIR", "var/media")
    #: Websocket messages larger than this close the socket (1009).
    ws_max_message_bytes: int = setting("WS_MAX_MESSAGE_BYTES", 4096)
    #: Messages a socket may send per second (burst of twice that) before it is closed (1008).
    ws_max_messages_per_second: int = setting("WS_MAX_MESSAGES_PER_SECOND", 5)

    @property
    def grace_seconds(self) -> int:
        return self.heartbeat_interval_seconds * self.heartbeat_grace_intervals


@dataclass(frozen=True)
class MediaSettings:
    """Ingest (tus uploads and URLs) and the media jobs; files live under ``MEDIA_DIR`` (playback)."""

    #: The largest source accepted, by upload or from a URL (413 above it).
    max_upload_bytes: int = setting("MAX_UPLOAD_BYTES", 21_474_836_480)
    #: The largest body of one tus PATCH (advertised; clients set their chunk size to it).
    tus_max_chunk_bytes: int = setting("TUS_MAX_CHUNK_BYTES", 8_388_608)
    #: An upload that has not received its last byte this long after it started is discarded.
    upload_expiry_hours: float = setting("MEDIA_UPLOAD_EXPIRY_HOURS", 168.0)
    #: URL ingest may reach private, loopback and link-local addresses (never in production by default).
    ingest_allow_private: bool = setting("MEDIA_INGEST_ALLOW_PRIVATE", False)
    #: How long fetching a source URL may take in all.
    ingest_timeout_seconds: float = setting("MEDIA_INGEST_TIMEOUT_SECONDS", 3600.0)
    #: Run the media worker inside each API process; off when `reelhouse media worker` runs instead.
    worker_in_api: bool = setting("MEDIA_WORKER_IN_API", True)
    poll_seconds: float = setting("MEDIA_POLL_SECONDS", 2.0)
    #: A claimed job whose worker stops renewing its lease for this long is claimed again.
    lease_seconds: int = setting("MEDIA_LEASE_SECONDS", 60)
    max_attempts: int = setting("MEDIA_MAX_ATTEMPTS", 3)
    retry_base_seconds: float = setting("MEDIA_RETRY_BASE_SECONDS", 30.0)
    retry_max_seconds: float = setting("MEDIA_RETRY_MAX_SECONDS", 1800.0)
    #: x264 preset of the transcode (slow is the quality default; faster presets for tests and demos).
    encoder_preset: str = setting("MEDIA_ENCODER_PRESET", "slow")
    #: Where uploads and processed media are stored: empty or ``file:///path`` for files (``MEDIA_DIR``
    #: when empty), ``s3://bucket/prefix`` for S3-compatible object storage shared by every instance.
    store_url: str = setting("MEDIA_STORE_URL", "")
    #: The S3 API's address for MinIO, R2 and others (``https://<account>.r2.cloudflarestorage.com``); empty: AWS.
    s3_endpoint_url: str = setting("MEDIA_S3_ENDPOINT_URL", "")
    #: The bucket's region (``auto`` for R2).
    s3_region: str = setting("MEDIA_S3_REGION", "us-east-1")
    #: Credentials; both empty: the usual AWS sources (``AWS_*`` variables, instance or container role).
    s3_access_key_id: str = setting("MEDIA_S3_ACCESS_KEY_ID", "")
    s3_secret_access_key: str = setting("MEDIA_S3_SECRET_ACCESS_KEY", "", secret=True)
    #: Address the bucket in the path (``endpoint/bucket/key``) rather than the host name: MinIO needs it.
    s3_path_style: bool = setting("MEDIA_S3_PATH_STYLE", False)
    #: Local scratch space of the media worker (sources being assembled, output being made); empty:
    #: ``<VAR_DIR>/media-work``. Never served: finished output is published to the media store.
    work_dir: str = setting("MEDIA_WORK_DIR", "")
    #: Memory each API instance keeps recently served segments in (many viewers of a title ask
    #: for the same seconds of it); 0 reads every segment from the media store.
    segment_cache_mb: int = setting("MEDIA_SEGMENT_CACHE_MB", 64)
    #: ``aes-128``: new media's segments are encrypted whole, keys handed out only to live streams
    #: within their cap (for segments served from a cache or CDN); ``none``: in the clear.
    encryption: str = setting("MEDIA_ENCRYPTION", "none")
    #: Segments per AES-128 key (the key rotates every this many ~4 s segments).
    key_period_segments: int = setting("MEDIA_KEY_PERIOD_SEGMENTS", 3)
    #: What media keys are derived from; empty: derived from JWT_SECRET. Changing it makes media
    #: encrypted before unplayable until it is processed again.
    key_secret: str = setting("MEDIA_KEY_SECRET", "", secret=True)
    #: Where a CDN (or the object store, or a file server over MEDIA_DIR) serves the media store's
    #: files: encrypted media's segments are listed there, off the API; empty: the API serves them.
    public_base_url: str = setting("MEDIA_PUBLIC_BASE_URL", "")

    @property
    def encrypts(self) -> bool:
        return self.encryption == "aes-128"


#: S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens, starting and ending alphanumeric.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class MediaStoreTarget:
    """Where MEDIA_STORE_URL points: a directory, or a bucket (and a prefix in it) with its settings."""

    kind: Literal["file", "s3"]
    directory: str = ""
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = field(default="", repr=False)
    secret_access_key: str = field(default="", repr=False)
    path_style: bool = False


def media_store_target(media: MediaSettings, media_dir: str) -> MediaStoreTarget:
    """Read MEDIA_STORE_URL and the MEDIA_S3_* settings; a :class:`SettingsError` naming the one that is wrong."""
    url = media.store_url.strip()
    if not url:
        return MediaStoreTarget(kind="file", directory=media_dir)
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path or parts.query:
            raise SettingsError("MEDIA_STORE_URL: a file:// URL names a directory, e.g. file:///srv/reelhouse/media")
        return MediaStoreTarget(kind="file", directory=parts.path)
    if parts.scheme != "s3":
        raise SettingsError("MEDIA_STORE_URL must be empty (MEDIA_DIR), file:///path or s3://bucket/prefix")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise SettingsError(
            "MEDIA_STORE_URL: give credentials in MEDIA_S3_ACCESS_KEY_ID and MEDIA_S3_SECRET_ACCESS_KEY, not the URL"
        )
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise SettingsError(f"MEDIA_STORE_URL: {bucket!r} is not an S3 bucket name (3-63 of a-z, 0-9, '.', '-')")
    prefix = parts.path.strip("/")
    if prefix and not all(re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", segment) for segment in prefix.split("/")):
        raise SettingsError(f"MEDIA_STORE_URL: the prefix {prefix!r} may hold only letters, digits, '.', '_', '-'")
    endpoint = media.s3_endpoint_url.strip().rstrip("/")
    if endpoint:
        parsed = urlsplit(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path or parsed.query:
            raise SettingsError("MEDIA_S3_ENDPOINT_URL must be an http(s):// origin, e.g. https://minio.example.com")
    if not media.s3_region.strip():
        raise SettingsError("MEDIA_S3_REGION must not be empty (us-east-1 for MinIO, auto for R2)")
    if bool(media.s3_access_key_id) != bool(media.s3_secret_access_key):
        raise SettingsError("MEDIA_S3_ACCESS_KEY_ID and MEDIA_S3_SECRET_ACCESS_KEY are set together or not at all")
    return MediaStoreTarget(
        kind="s3",
        bucket=bucket,
        prefix=prefix,
        endpoint_url=endpoint,
        region=media.s3_region.strip(),
        access_key_id=media.s3_access_key_id,
        secret_access_key=media.s3_secret_access_key,
        path_style=media.s3_path_style,
    )


@dataclass(frozen=True)
class PlayerSettings:
    """The reference web player at ``/player``."""

    #: Where hls.js's built files are (``hls.min.js``, ``hls.worker.js``), served at ``/player/vendor/``;
    #: empty: ``node_modules/hls.js/dist`` in the checkout, where ``scripts/run`` and ``scripts/test``
    #: install it. Without them the player plays HLS natively only.
    vendor_dir: str = setting("PLAYER_VENDOR_DIR", "")


@dataclass(frozen=True)
class NotificationSettings:
    #: smtp://user:pass@host:port?starttls=true (or smtps:// for TLS from the start); empty: .eml files.
    smtp_url: str = setting("SMTP_URL", "", secret=True)
    mail_from: str = setting("MAIL_FROM", "Reelhouse <no-reply@reelhouse.local>")
    smtp_timeout_seconds: float = setting("SMTP_TIMEOUT_SECONDS", 10.0)
    #: Run the dispatcher inside each API process; off when `reelhouse notifications worker` runs instead.
    dispatch_in_api: bool = setting("NOTIFICATION_DISPATCH_IN_API", True)
    poll_seconds: float = setting("NOTIFICATION_POLL_SECONDS", 5.0)
    batch_size: int = setting("NOTIFICATION_BATCH_SIZE", 20)
    max_attempts: int = setting("NOTIFICATION_MAX_ATTEMPTS", 8)
    retry_base_seconds: float = setting("NOTIFICATION_RETRY_BASE_SECONDS", 30.0)
    retry_max_seconds: float = setting("NOTIFICATION_RETRY_MAX_SECONDS", 3600.0)
    #: A claimed mail not finished within this long (its worker died) is claimed again.
    lease_seconds: int = setting("NOTIFICATION_LEASE_SECONDS", 300)
    #: Days before a subscription ends without renewal that its owner is reminded.
    reminder_days: list[str] = setting("REMINDER_DAYS", ["7", "3", "1"])
    #: New releases within this many minutes reach a user as one digest.
    new_release_digest_minutes: float = setting("NEW_RELEASE_DIGEST_MINUTES", 15.0)

    @property
    def reminder_offsets(self) -> list[int]:
        """The reminder days, largest first."""
        return sorted({int(day) for day in self.reminder_days}, reverse=True)


@dataclass(frozen=True)
class Settings:
    environment: Environment = setting("ENVIRONMENT", "development")
    var_dir: str = setting("VAR_DIR", "var")
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    playback: PlaybackSettings = field(default_factory=PlaybackSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    player: PlayerSettings = field(default_factory=PlayerSettings)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def media_store(self) -> MediaStoreTarget:
        return media_store_target(self.media, self.playback.media_dir)


SECTIONS: dict[str, type[Any]] = {
    "server": ServerSettings,
    "database": DatabaseSettings,
    "redis": RedisSettings,
    "auth": AuthSettings,
    "rate_limit": RateLimitSettings,
    "admin": AdminSettings,
    "playback": PlaybackSettings,
    "notifications": NotificationSettings,
    "media": MediaSettings,
    "player": PlayerSettings,
}

T = TypeVar("T")


def _coerce(raw: Any, annotation: Any, name: str) -> Any:
    """Turn a toml value or an environment string into the field's type."""
    origin = get_origin(annotation)
    if origin is Literal:
        if raw not in get_args(annotation):
            allowed = ", ".join(get_args(annotation))
            raise SettingsError(f"{name} must be one of {allowed}, not {raw!r}")
        return raw
    if annotation is bool:
        if isinstance(raw, bool):
            return raw
        lowered = str(raw).strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise SettingsError(f"{name} must be true or false, not {raw!r}")
    if annotation in (int, float):
        # int(True) and int(2.5) would pass silently; a toml typo should not.
        if isinstance(raw, bool) or (annotation is int and isinstance(raw, float)):
            raise SettingsError(f"{name} must be a whole number, not {raw!r}")
        try:
            return annotation(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if origin is list:
        return _coerce_list(raw, name)
    return str(raw)


def _coerce_list(raw: Any, name: str) -> list[str]:
    if isinstance(raw, list):
        return [str(item) for item in raw]
    text = str(raw).strip()
    if text.startswith("["):  # the toml spelling, ["a", "b"], also works in the environment
        try:
            parsed = json.loads(text)
        except ValueError:
            raise SettingsError(f"{name} must be a comma-separated list or a JSON list, not {raw!r}") from None
        return [str(item) for item in parsed]
    return [item.strip() for item in text.split(",") if item.strip()]


def _build(cls: type[T], toml_section: dict[str, Any], env: dict[str, str]) -> T:
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for item in fields(cls):  # type: ignore[arg-type]
        env_name = item.metadata.get("env")
        if env_name is None:
            continue
        if env_name in env:
            values[item.name] = _coerce(env[env_name], hints[item.name], env_name)
        elif item.name in toml_section:
            values[item.name] = _coerce(toml_section[item.name], hints[item.name], env_name)
    return cls(**values)


def normalize_database_url(url: str, var_dir: Path) -> str:
    """Accept the usual URL spellings and name the async driver explicitly."""
    if not url:
        return f"sqlite+aiosqlite:///{(var_dir / 'reelhouse.db').as_posix()}"
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite:///")):
        return url
    raise SettingsError("DATABASE_URL must be a postgresql:// (or postgresql+asyncpg://) or sqlite:/// URL")


def _development_secret(var_dir: Path) -> str:
    """A random signing key generated once per checkout and kept under var/ (mode 0600)."""
    path = var_dir / "jwt-secret"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        # Written whole to a private temporary file, then hard-linked into place: when two
        # workers start together exactly one link wins and nobody ever reads a half-written key.
        descriptor, temporary = tempfile.mkstemp(dir=var_dir, prefix=".jwt-secret.")
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    secret = path.read_text().strip()
    if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        raise SettingsError(f"{path} holds no usable JWT secret; delete it to have a new one generated")
    return secret


#: Settings that divide by or count with their value: below 1 they would fail on every request.
_AT_LEAST_ONE = frozenset(
    {
        "WEB_CONCURRENCY",
        "REQUEST_MAX_BODY_BYTES",
        "DATABASE_POOL_SIZE",
        "ACCESS_TOKEN_TTL_SECONDS",
        "REFRESH_TOKEN_TTL_DAYS",
        "ARGON2_MEMORY_KIB",
        "ARGON2_TIME_COST",
        "ARGON2_PARALLELISM",
        "MAX_CONCURRENT_HASHES",
        "LOGIN_MAX_FAILURES_PER_ACCOUNT",
        "LOGIN_MAX_FAILURES_PER_ACCOUNT_TOTAL",
        "PLAYBACK_EVENTS_RETENTION_MONTHS",
        "LOGIN_MAX_FAILURES_PER_IP",
        "LOGIN_FAILURE_WINDOW_SECONDS",
        "RATE_LIMIT_ANONYMOUS_PER_MINUTE",
        "RATE_LIMIT_USER_PER_MINUTE",
        "RATE_LIMIT_AUTH_PER_MINUTE",
        "RATE_LIMIT_PROBE_PER_MINUTE",
        "HEARTBEAT_INTERVAL_SECONDS",
        "HEARTBEAT_GRACE_INTERVALS",
        "PROGRESS_FLUSH_SECONDS",
        "NOTIFICATION_BATCH_SIZE",
        "NOTIFICATION_MAX_ATTEMPTS",
        "NOTIFICATION_LEASE_SECONDS",
        "MAX_UPLOAD_BYTES",
        "TUS_MAX_CHUNK_BYTES",
        "MEDIA_LEASE_SECONDS",
        "MEDIA_MAX_ATTEMPTS",
    }
)
MAX_PORT = 65535
#: The x264 presets the media core accepts (its EncoderSettings: those that keep H.264 High), fastest first.
X264_PRESETS = ("superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def _validate(settings: Settings) -> None:
    """Refuse values that would only fail later, on a request, with a message naming the variable."""
    _validate_numbers(settings)
    _validate_texts(settings)


def _validate_numbers(settings: Settings) -> None:
    for name in SECTIONS:
        section = getattr(settings, name)
        for item in fields(section):
            value = getattr(section, item.name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            env_name = item.metadata["env"]
            if env_name in _AT_LEAST_ONE and value < 1:
                raise SettingsError(f"{env_name} must be at least 1, not {value}")
            if value < 0:
                raise SettingsError(f"{env_name} must not be negative, not {value}")
            if env_name.endswith("_PERCENT") and value > 100:
                raise SettingsError(f"{env_name} must be between 0 and 100, not {value}")


def _validate_texts(settings: Settings) -> None:
    if settings.server.port > MAX_PORT:
        raise SettingsError(f"PORT must be at most {MAX_PORT}, not {settings.server.port}")
    reminder_days = settings.notifications.reminder_days
    if not all(day.isdigit() and int(day) >= 1 for day in reminder_days):
        raise SettingsError(f"REMINDER_DAYS must list whole numbers of days, at least 1, not {reminder_days!r}")
    public_url = settings.server.public_url
    if public_url and (not public_url.startswith(("http://", "https://")) or "?" in public_url or "#" in public_url):
        raise SettingsError(
            "PUBLIC_URL must be an http:// or https:// URL without a query, e.g. https://tv.example.com"
        )
    if settings.notifications.smtp_url and not settings.notifications.smtp_url.startswith(("smtp://", "smtps://")):
        raise SettingsError("SMTP_URL must be an smtp:// or smtps:// URL")
    if settings.redis.enabled:
        _ = settings.redis.target  # raises SettingsError naming REDIS_URL
    if "{" in settings.redis.key_prefix or "}" in settings.redis.key_prefix:
        # Keys are hash-tagged with {user_id}; a brace in the prefix would move the tag.
        raise SettingsError(f"REDIS_KEY_PREFIX must not contain braces, not {settings.redis.key_prefix!r}")
    _ = media_store_target(settings.media, settings.playback.media_dir)  # raises SettingsError naming the setting
    if settings.media.encoder_preset not in X264_PRESETS:
        raise SettingsError(f"MEDIA_ENCODER_PRESET must be one of {', '.join(X264_PRESETS)}")
    if settings.media.encryption not in MEDIA_ENCRYPTIONS:
        raise SettingsError(f"MEDIA_ENCRYPTION must be one of {', '.join(MEDIA_ENCRYPTIONS)}")
    public_base = settings.media.public_base_url
    if public_base and (
        not public_base.startswith(("http://", "https://")) or "?" in public_base or "#" in public_base
    ):
        raise SettingsError("MEDIA_PUBLIC_BASE_URL must be an http:// or https:// URL without a query")
    if public_base and not settings.media.encrypts:
        raise SettingsError(
            "MEDIA_PUBLIC_BASE_URL needs MEDIA_ENCRYPTION=aes-128: segments a CDN serves cannot check a "
            "session, so only encrypted ones are listed there"
        )
    if not 1 <= settings.media.key_period_segments <= MAX_KEY_PERIOD_SEGMENTS:
        raise SettingsError(f"MEDIA_KEY_PERIOD_SEGMENTS must be 1 to {MAX_KEY_PERIOD_SEGMENTS}")
    try:
        _ = settings.server.trusted_proxy_networks
    except ValueError as exc:
        raise SettingsError(f"TRUSTED_PROXIES must list IP networks (CIDR), comma-separated: {exc}") from None


def check_production(settings: Settings) -> None:
    """Refuse to run production on secrets that are missing, short or known defaults."""
    problems: list[str] = []
    secret = settings.auth.jwt_secret
    if not secret:
        problems.append("JWT_SECRET is not set")
    elif len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        problems.append(f"JWT_SECRET is shorter than {MIN_JWT_SECRET_BYTES} bytes")
    # ADMIN_PASSWORD also feeds `reelhouse users create-admin`, so it is checked even without ADMIN_EMAIL.
    admin_password = settings.admin.password
    if (settings.admin.email or admin_password) and admin_password.lower() in DEFAULT_PASSWORDS:
        problems.append("ADMIN_PASSWORD is a default or empty password")
    elif admin_password and len(admin_password) < MIN_ADMIN_PASSWORD_LENGTH:
        problems.append(f"ADMIN_PASSWORD is shorter than {MIN_ADMIN_PASSWORD_LENGTH} characters")
    if settings.server.metrics_token and len(settings.server.metrics_token) < MIN_METRICS_TOKEN_LENGTH:
        problems.append(f"METRICS_TOKEN is shorter than {MIN_METRICS_TOKEN_LENGTH} characters")
    if not settings.server.public_url:
        problems.append("PUBLIC_URL is not set (links in answers and mail are built from it)")
    database_password = _url_password(settings.database.url)
    if database_password is not None and database_password.lower() in DEFAULT_PASSWORDS:
        problems.append("DATABASE_URL uses a default password")
    if problems:
        raise SettingsError("refusing to start in production: " + "; ".join(problems))


def _url_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    if url.startswith("sqlite"):
        return None
    return make_url(url).password


#: The checkout this code runs from (``src/reelhouse/config.py`` -> the folder holding ``src``).
CHECKOUT_DIR = Path(__file__).resolve().parents[2]
#: Where ``npm ci`` (run by ``scripts/run``, ``scripts/test`` and the image build) puts hls.js's built files.
HLS_JS_DIST = str(CHECKOUT_DIR / "node_modules" / "hls.js" / "dist")


def reelhouse_home(environ: dict[str, str]) -> Path:
    """Where ``litestar.toml`` and ``.env`` are read and relative paths (``VAR_DIR``, ``MEDIA_DIR``, an
    SQLite file) point: ``REELHOUSE_HOME``, else the checkout the code runs from, else the working
    directory. So every command finds the same embedded database from any directory.
    """
    if home := environ.get("REELHOUSE_HOME"):
        return Path(home).expanduser().resolve()
    if (CHECKOUT_DIR / "litestar.toml").is_file():
        return CHECKOUT_DIR
    return Path.cwd()


def _under(root: Path, path: str) -> str:
    return path if Path(path).is_absolute() else str(root / path)


def _sqlite_under(root: Path, url: str) -> str:
    """A ``sqlite:///relative.db`` URL made absolute under ``root`` (``sqlite:////abs.db`` stays)."""
    for prefix in ("sqlite:///", "sqlite+aiosqlite:///"):
        if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
            return prefix + _under(root, url[len(prefix) :])
    return url


def load_settings(
    environ: dict[str, str] | None = None,
    config_file: Path | None = None,
    env_file: Path | None = None,
) -> Settings:
    """Read the settings; ``environ`` defaults to the process environment."""
    process_env = dict(os.environ if environ is None else environ)
    root = reelhouse_home(process_env)
    config_file = config_file or Path(process_env.get("REELHOUSE_CONFIG", root / "litestar.toml"))
    env_file = env_file or Path(process_env.get("REELHOUSE_ENV_FILE", root / ".env"))

    toml_data: dict[str, Any] = {}
    if config_file.is_file():
        toml_data = tomllib.loads(config_file.read_text())
    dotenv_data = {k: v for k, v in dotenv_values(env_file).items() if v is not None} if env_file.is_file() else {}
    env = {**dotenv_data, **process_env}

    app_section = toml_data.get("app", {})
    top = _build(Settings, app_section, env)
    sections = {name: _build(cls, toml_data.get(name, {}), env) for name, cls in SECTIONS.items()}
    settings = Settings(environment=top.environment, var_dir=top.var_dir, **sections)

    _validate(settings)
    var_dir = Path(_under(root, settings.var_dir))
    playback = sections["playback"]
    media = sections["media"]
    player = sections["player"]
    settings = _replace(
        settings,
        var_dir=str(var_dir),
        playback=_replace(playback, media_dir=_under(root, playback.media_dir)),
        media=_replace(media, work_dir=_under(root, media.work_dir) if media.work_dir else str(var_dir / "media-work")),
        player=_replace(player, vendor_dir=_under(root, player.vendor_dir) if player.vendor_dir else HLS_JS_DIST),
    )
    database = sections["database"]
    database = DatabaseSettings(
        url=normalize_database_url(_sqlite_under(root, database.url), var_dir),
        echo=database.echo,
        pool_size=database.pool_size,
        max_overflow=database.max_overflow,
        migrate_on_startup=database.migrate_on_startup,
    )
    auth = sections["auth"]
    if settings.is_production:
        settings = _replace(settings, database=database)
        check_production(settings)
    elif not auth.jwt_secret:
        auth = _replace(auth, jwt_secret=_development_secret(var_dir))
    return _replace(settings, database=database, auth=auth)


def _replace(obj: T, **changes: Any) -> T:
    from dataclasses import replace

    return replace(obj, **changes)  # type: ignore[type-var]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def redacted(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings as a dict with every secret masked, safe to log."""
    out: dict[str, dict[str, Any]] = {"app": {"environment": settings.environment, "var_dir": settings.var_dir}}
    for name in SECTIONS:
        section = getattr(settings, name)
        out[name] = {
            item.name: (
                "***" if item.metadata.get("secret") and getattr(section, item.name) else getattr(section, item.name)
            )
            for item in fields(section)
        }
    return out
