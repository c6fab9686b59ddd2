"""Settings: where values come from, how they are checked, and what production refuses."""

from __future__ import annotations

import re
import stat
from dataclasses import fields
from pathlib import Path

import pytest

from reelhouse.config import (
    MIN_JWT_SECRET_BYTES,
    SECTIONS,
    MediaStoreTarget,
    Settings,
    SettingsError,
    load_settings,
    normalize_database_url,
    redacted,
)

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "x" * MIN_JWT_SECRET_BYTES
GOOD_PRODUCTION = {
    "ENVIRONMENT": "production",
    "JWT_SECRET": GOOD_SECRET,
    "DATABASE_URL": "postgresql://reelhouse:s3cret-and-long@db.internal:5432/reelhouse",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "PUBLIC_URL": "https://tv.example.com",
}


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def load(tmp_path: Path, var_dir: Path):
    """``load(environ, toml=..., dotenv=...)`` with files under tmp_path and never the checkout's own."""

    def loader(environ: dict[str, str] | None = None, *, toml: str = "", dotenv: str = "") -> Settings:
        config_file = tmp_path / "litestar.toml"
        env_file = tmp_path / ".env"
        config_file.write_text(toml)
        env_file.write_text(dotenv)
        return load_settings(
            environ={"VAR_DIR": str(var_dir), **(environ or {})},
            config_file=config_file,
            env_file=env_file,
        )

    return loader


class TestPrecedence:
    def test_defaults_apply_when_nothing_is_set(self, load):
        settings = load()
        assert settings.environment == "development"
        assert settings.server.port == 8000
        assert settings.rate_limit.enabled is True

    def test_toml_overrides_the_defaults(self, load):
        settings = load(toml="[server]\nport = 9001\n[rate_limit]\nenabled = false\n")
        assert settings.server.port == 9001
        assert settings.rate_limit.enabled is False

    def test_dotenv_overrides_toml(self, load):
        settings = load(toml="[server]\nport = 9001\nlog_level = 'DEBUG'\n", dotenv="PORT=9002\n")
        assert settings.server.port == 9002
        assert settings.server.log_level == "DEBUG"

    def test_environment_overrides_dotenv_and_toml(self, load):
        settings = load({"PORT": "9003"}, toml="[server]\nport = 9001\n", dotenv="PORT=9002\n")
        assert settings.server.port == 9003

    def test_top_level_settings_come_from_the_app_table(self, load, tmp_path):
        settings = load(toml=f"[app]\nenvironment = 'test'\nvar_dir = '{tmp_path / 'elsewhere'}'\n", environ={})
        assert settings.environment == "test"

    def test_lists_accept_commas_json_and_toml_arrays(self, load):
        from_env = load({"CORS_ALLOWED_ORIGINS": "https://a.example, https://b.example"})
        from_json = load({"CORS_ALLOWED_ORIGINS": '["https://a.example", "https://b.example"]'})
        from_toml = load(toml="[server]\ncors_allowed_origins = ['https://a.example', 'https://b.example']\n")
        expected = ["https://a.example", "https://b.example"]
        assert from_env.server.cors_allowed_origins == expected
        assert from_json.server.cors_allowed_origins == expected
        assert from_toml.server.cors_allowed_origins == expected

    def test_the_shipped_litestar_toml_loads(self, var_dir):
        settings = load_settings(
            environ={"VAR_DIR": str(var_dir)}, config_file=ROOT / "litestar.toml", env_file=ROOT / "no-such.env"
        )
        assert settings.auth.access_token_ttl_seconds == 900
        assert settings.media.tus_max_chunk_bytes == 8 * 1024 * 1024
        assert settings.media.ingest_allow_private is False

    def test_media_settings_come_from_the_environment(self, load):
        settings = load(
            {"MAX_UPLOAD_BYTES": "1000", "MEDIA_INGEST_ALLOW_PRIVATE": "true", "MEDIA_ENCODER_PRESET": "superfast"}
        )
        assert settings.media.max_upload_bytes == 1000
        assert settings.media.ingest_allow_private is True
        assert settings.media.encoder_preset == "superfast"

    def test_hls_js_is_served_from_the_checkouts_node_modules_unless_set(self, load, tmp_path):
        assert load().player.vendor_dir == str(ROOT / "node_modules" / "hls.js" / "dist")
        assert load({"PLAYER_VENDOR_DIR": "/srv/hls"}).player.vendor_dir == "/srv/hls"
        # A relative one is taken under the Reelhouse home, like MEDIA_DIR.
        home = {"REELHOUSE_HOME": str(tmp_path)}
        assert load({**home, "PLAYER_VENDOR_DIR": "vendor/hls"}).player.vendor_dir == str(tmp_path / "vendor/hls")

    def test_an_unknown_encoder_preset_is_refused(self, load):
        with pytest.raises(SettingsError, match="MEDIA_ENCODER_PRESET must be one of"):
            load({"MEDIA_ENCODER_PRESET": "fastest"})

    @pytest.mark.parametrize(
        ("environ", "message"),
        [
            ({"MEDIA_ENCRYPTION": "aes-256"}, "MEDIA_ENCRYPTION must be one of none, aes-128"),
            ({"MEDIA_KEY_PERIOD_SEGMENTS": "0"}, "MEDIA_KEY_PERIOD_SEGMENTS must be 1 to 100"),
            ({"MEDIA_PUBLIC_BASE_URL": "https://cdn.example.com"}, "needs MEDIA_ENCRYPTION=aes-128"),
            (
                {"MEDIA_ENCRYPTION": "aes-128", "MEDIA_PUBLIC_BASE_URL": "cdn.example.com"},
                "MEDIA_PUBLIC_BASE_URL must be an http",
            ),
        ],
    )
    def test_media_delivery_settings_that_cannot_work_are_refused(self, load, environ, message):
        with pytest.raises(SettingsError, match=message):
            load(environ)

    def test_encrypted_media_on_a_cdn(self, load):
        settings = load({"MEDIA_ENCRYPTION": "aes-128", "MEDIA_PUBLIC_BASE_URL": "https://cdn.example.com/m"})
        assert settings.media.encrypts
        assert settings.media.public_base_url == "https://cdn.example.com/m"


class TestMediaStore:
    def test_the_default_is_files_under_media_dir_and_scratch_under_var_dir(self, load, var_dir):
        settings = load({"MEDIA_DIR": "/srv/media"})
        assert settings.media_store == MediaStoreTarget(kind="file", directory="/srv/media")
        assert settings.media.work_dir == str(var_dir / "media-work")
        assert load({"MEDIA_STORE_URL": "file:///data/media"}).media_store.directory == "/data/media"

    def test_an_s3_url_with_its_settings(self, load):
        settings = load(
            {
                "MEDIA_STORE_URL": "s3://reelhouse-media/prod/v1/",
                "MEDIA_S3_ENDPOINT_URL": "https://minio.internal:9000/",
                "MEDIA_S3_REGION": "auto",
                "MEDIA_S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
                "MEDIA_S3_SECRET_ACCESS_KEY": "very-secret-key",
                "MEDIA_S3_PATH_STYLE": "true",
            }
        )
        target = settings.media_store
        assert (target.kind, target.bucket, target.prefix) == ("s3", "reelhouse-media", "prod/v1")
        assert (target.endpoint_url, target.region, target.path_style) == ("https://minio.internal:9000", "auto", True)
        assert target.secret_access_key == "very-secret-key"

    def test_the_secret_key_is_never_shown(self, load):
        settings = load(
            {
                "MEDIA_STORE_URL": "s3://bucket-a",
                "MEDIA_S3_ACCESS_KEY_ID": "id",
                "MEDIA_S3_SECRET_ACCESS_KEY": "hunter2",
            }
        )
        assert redacted(settings)["media"]["s3_secret_access_key"] == "***"
        assert "hunter2" not in repr(settings)
        assert "hunter2" not in repr(settings.media_store)

    @pytest.mark.parametrize(
        ("environ", "message"),
        [
            ({"MEDIA_STORE_URL": "ftp://x/y"}, "MEDIA_STORE_URL must be empty"),
            ({"MEDIA_STORE_URL": "s3://Bad_Bucket"}, "not an S3 bucket name"),
            ({"MEDIA_STORE_URL": "s3://ab"}, "not an S3 bucket name"),
            ({"MEDIA_STORE_URL": "s3://key:secret@bucket-a/p"}, "not the URL"),
            ({"MEDIA_STORE_URL": "s3://bucket-a/a b"}, "the prefix"),
            ({"MEDIA_STORE_URL": "file://host/media"}, "a file:// URL names a directory"),
            ({"MEDIA_STORE_URL": "s3://bucket-a", "MEDIA_S3_ENDPOINT_URL": "minio:9000"}, "MEDIA_S3_ENDPOINT_URL"),
            ({"MEDIA_STORE_URL": "s3://bucket-a", "MEDIA_S3_REGION": " "}, "MEDIA_S3_REGION"),
            ({"MEDIA_STORE_URL": "s3://bucket-a", "MEDIA_S3_ACCESS_KEY_ID": "id"}, "set together"),
        ],
    )
    def test_settings_that_cannot_work_are_refused_at_load(self, load, environ, message):
        with pytest.raises(SettingsError, match=message):
            load(environ)


class TestRedisUrl:
    def test_a_plain_url_is_one_redis(self, load):
        target = load({"REDIS_URL": "redis://cache.internal:6379/2"}).redis.target
        assert (target.cluster, target.url, target.nodes) == (False, "redis://cache.internal:6379/2", ())

    def test_a_cluster_url_lists_its_startup_nodes_and_keeps_credentials_and_options(self, load):
        url = "rediss+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2,[::1]:7002/0?ssl_cert_reqs=none"
        settings = load({"REDIS_URL": url})
        target = settings.redis.target
        assert target.cluster
        assert target.url == "rediss://app:s%40cret@10.0.0.1:7000/0?ssl_cert_reqs=none"
        assert target.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))

    def test_redis_cluster_makes_a_plain_url_a_cluster_node(self, load):
        from_env = load({"REDIS_URL": "redis://10.0.0.1:7000", "REDIS_CLUSTER": "true"}).redis.target
        from_toml = load({"REDIS_URL": "redis://10.0.0.1:7000"}, toml="[redis]\ncluster = true\n").redis.target
        for target in (from_env, from_toml):
            assert (target.cluster, target.url, target.nodes) == (True, "redis://10.0.0.1:7000", (("10.0.0.1", 7000),))

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("redis+cluster://h:7000/3", "only database 0"),
            ("redis+cluster://h:7000,:7001", "not a host:port"),
            ("redis+cluster://h:port", "not a host:port"),
            ("memcached://h:11211", "REDIS_URL must be"),
            ("cache.internal:6379", "REDIS_URL must be"),
        ],
    )
    def test_urls_that_cannot_work_are_refused_at_load(self, load, url, message):
        with pytest.raises(SettingsError, match=message):
            load({"REDIS_URL": url})

    def test_a_cluster_is_not_reached_over_a_unix_socket(self, load):
        with pytest.raises(SettingsError, match="unix socket"):
            load({"REDIS_URL": "unix:///run/redis.sock", "REDIS_CLUSTER": "true"})

    def test_a_key_prefix_with_braces_is_refused(self, load):
        with pytest.raises(SettingsError, match="REDIS_KEY_PREFIX"):
            load({"REDIS_KEY_PREFIX": "rh{eu}"})


class TestDatabaseUrl:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("postgresql://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
            ("postgres://u:p@h/d", "postgresql+asyncpg://u:p@h/d"),
            ("postgresql+asyncpg://u:p@h/d", "postgresql+asyncpg://u:p@h/d"),
            ("sqlite:///var/app.db", "sqlite+aiosqlite:///var/app.db"),
            ("sqlite:////abs/app.db", "sqlite+aiosqlite:////abs/app.db"),
        ],
    )
    def test_usual_spellings_name_the_async_driver(self, given, expected, tmp_path):
        assert normalize_database_url(given, tmp_path) == expected

    @pytest.mark.parametrize("given", ["mysql://u:p@h/d", "redis://h:6379/0", "http://example.com", "nonsense"])
    def test_other_urls_are_refused(self, given, tmp_path):
        with pytest.raises(SettingsError, match="DATABASE_URL"):
            normalize_database_url(given, tmp_path)

    def test_a_bad_url_in_the_environment_is_refused_at_load(self, load):
        with pytest.raises(SettingsError, match="DATABASE_URL"):
            load({"DATABASE_URL": "mysql://u:p@h/d"})

    def test_embedded_default_is_sqlite_under_var_dir(self, load, var_dir):
        settings = load()
        assert settings.database.url == f"sqlite+aiosqlite:///{(var_dir / 'reelhouse.db').as_posix()}"
        assert settings.database.is_postgresql is False
        assert settings.redis.enabled is False

    def test_postgres_url_from_the_environment_selects_postgresql(self, load):
        settings = load({"DATABASE_URL": "postgres://u:p@h/d", "REDIS_URL": "redis://h:6379/0"})
        assert settings.database.is_postgresql is True
        assert settings.redis.enabled is True


class TestProductionRefusesWeakSecrets:
    def test_a_good_configuration_is_accepted(self, load):
        settings = load(GOOD_PRODUCTION)
        assert settings.is_production
        assert settings.auth.jwt_secret == GOOD_SECRET

    def test_a_missing_jwt_secret_is_refused(self, load):
        environ = {key: value for key, value in GOOD_PRODUCTION.items() if key != "JWT_SECRET"}
        with pytest.raises(SettingsError, match="JWT_SECRET is not set"):
            load(environ)

    def test_a_secret_one_byte_too_short_is_refused(self, load):
        with pytest.raises(SettingsError, match="JWT_SECRET is shorter than 32 bytes"):
            load({**GOOD_PRODUCTION, "JWT_SECRET": "x" * (MIN_JWT_SECRET_BYTES - 1)})

    def test_production_never_generates_a_secret(self, load, var_dir):
        with pytest.raises(SettingsError):
            load({**GOOD_PRODUCTION, "JWT_SECRET": ""})
        assert not (var_dir / "jwt-secret").exists()

    @pytest.mark.parametrize("password", ["admin", "changeme", "ChangeMe", ""])
    def test_a_default_admin_password_is_refused(self, load, password):
        with pytest.raises(SettingsError, match="ADMIN_PASSWORD"):
            load({**GOOD_PRODUCTION, "ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": password})

    def test_a_default_admin_password_is_refused_even_without_admin_email(self, load):
        # `reelhouse users create-admin` reads ADMIN_PASSWORD on its own.
        with pytest.raises(SettingsError, match="ADMIN_PASSWORD"):
            load({**GOOD_PRODUCTION, "ADMIN_PASSWORD": "admin"})

    def test_a_short_admin_password_is_refused(self, load):
        with pytest.raises(SettingsError, match="ADMIN_PASSWORD is shorter"):
            load({**GOOD_PRODUCTION, "ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "Tr0ub4dor&3"})

    def test_a_strong_admin_password_is_accepted(self, load):
        settings = load(
            {**GOOD_PRODUCTION, "ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "correct horse battery"}
        )
        assert settings.admin.email == "root@example.com"

    @pytest.mark.parametrize("password", ["postgres", "reelhouse"])
    def test_a_default_database_password_is_refused(self, load, password):
        url = f"postgresql://reelhouse:{password}@db.internal/reelhouse"
        with pytest.raises(SettingsError, match="DATABASE_URL uses a default password"):
            load({**GOOD_PRODUCTION, "DATABASE_URL": url})

    def test_every_problem_is_named_at_once(self, load):
        with pytest.raises(SettingsError) as raised:
            load(
                {
                    "ENVIRONMENT": "production",
                    "DATABASE_URL": "postgresql://postgres:postgres@db/reelhouse",
                    "ADMIN_EMAIL": "root@example.com",
                    "ADMIN_PASSWORD": "admin",
                }
            )
        message = str(raised.value)
        assert "JWT_SECRET" in message
        assert "ADMIN_PASSWORD" in message
        assert "DATABASE_URL" in message

    def test_production_needs_a_public_url(self, load):
        with pytest.raises(SettingsError, match="PUBLIC_URL is not set"):
            load({**GOOD_PRODUCTION, "PUBLIC_URL": ""})

    @pytest.mark.parametrize("url", ["tv.example.com", "ftp://tv.example.com", "https://tv.example.com/?x=1"])
    def test_a_public_url_must_be_an_http_origin(self, load, url):
        with pytest.raises(SettingsError, match="PUBLIC_URL must be an http"):
            load({"PUBLIC_URL": url})

    def test_allowed_hosts_come_from_the_environment_or_the_toml_file(self, load):
        assert load().server.allowed_hosts == []
        assert load({"ALLOWED_HOSTS": "tv.example.com, *.tv.example.com"}).server.allowed_hosts == [
            "tv.example.com",
            "*.tv.example.com",
        ]
        assert load(toml='[server]\nallowed_hosts = ["a.example"]\n').server.allowed_hosts == ["a.example"]

    def test_a_short_metrics_token_is_refused_in_production(self, load):
        with pytest.raises(SettingsError, match="METRICS_TOKEN is shorter than 24"):
            load({**GOOD_PRODUCTION, "METRICS_TOKEN": "short"})
        assert load({**GOOD_PRODUCTION, "METRICS_TOKEN": "t" * 24}).server.metrics_token == "t" * 24

    def test_the_metrics_token_is_a_secret_and_the_probe_limit_a_setting(self, load):
        settings = load({"METRICS_TOKEN": "scraper-token", "RATE_LIMIT_PROBE_PER_MINUTE": "30"})
        assert redacted(settings)["server"]["metrics_token"] == "***"
        assert settings.rate_limit.probe_per_minute == 30
        assert load().rate_limit.probe_per_minute == 120
        with pytest.raises(SettingsError, match="RATE_LIMIT_PROBE_PER_MINUTE must be at least 1"):
            load({"RATE_LIMIT_PROBE_PER_MINUTE": "0"})

    def test_development_accepts_what_production_refuses(self, load):
        settings = load({"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "admin"})
        assert settings.admin.password == "admin"


class TestDevelopmentSecret:
    def test_generated_once_under_var_dir_and_reused(self, load, var_dir):
        first = load()
        second = load()
        path = var_dir / "jwt-secret"
        assert path.is_file()
        assert first.auth.jwt_secret == second.auth.jwt_secret == path.read_text().strip()
        assert len(first.auth.jwt_secret.encode()) >= MIN_JWT_SECRET_BYTES

    def test_the_secret_file_is_private(self, load, var_dir):
        load()
        assert stat.S_IMODE((var_dir / "jwt-secret").stat().st_mode) == 0o600

    def test_no_temporary_files_are_left_behind(self, load, var_dir):
        load()
        assert [path.name for path in var_dir.iterdir()] == ["jwt-secret"]

    def test_a_configured_secret_wins_and_nothing_is_written(self, load, var_dir):
        settings = load({"JWT_SECRET": GOOD_SECRET})
        assert settings.auth.jwt_secret == GOOD_SECRET
        assert not (var_dir / "jwt-secret").exists()

    def test_an_empty_secret_file_is_refused_not_used(self, load, var_dir):
        var_dir.mkdir(parents=True)
        (var_dir / "jwt-secret").write_text("")
        with pytest.raises(SettingsError, match="jwt-secret"):
            load()


class TestBadValuesNameTheirVariable:
    @pytest.mark.parametrize("value", ["maybe", "2", "enabled"])
    def test_bad_boolean(self, load, value):
        with pytest.raises(SettingsError, match="RATE_LIMIT_ENABLED must be true or false"):
            load({"RATE_LIMIT_ENABLED": value})

    @pytest.mark.parametrize(("value", "expected"), [("yes", True), ("0", False), ("TRUE", True), ("off", False)])
    def test_boolean_spellings(self, load, value, expected):
        assert load({"RATE_LIMIT_ENABLED": value}).rate_limit.enabled is expected

    @pytest.mark.parametrize("value", ["eighty", "80.5", ""])
    def test_bad_integer(self, load, value):
        with pytest.raises(SettingsError, match="PORT must be a number"):
            load({"PORT": value})

    def test_a_fractional_integer_in_toml(self, load):
        with pytest.raises(SettingsError, match="PORT must be a whole number"):
            load(toml="[server]\nport = 80.5\n")

    def test_a_bad_value_in_dotenv_names_its_variable(self, load):
        with pytest.raises(SettingsError, match="DATABASE_POOL_SIZE"):
            load(dotenv="DATABASE_POOL_SIZE=lots\n")

    def test_unknown_environment(self, load):
        with pytest.raises(SettingsError, match="ENVIRONMENT must be one of development, test, production"):
            load({"ENVIRONMENT": "staging"})

    @pytest.mark.parametrize(
        "name", ["RATE_LIMIT_ANONYMOUS_PER_MINUTE", "ACCESS_TOKEN_TTL_SECONDS", "DATABASE_POOL_SIZE"]
    )
    def test_zero_where_at_least_one_is_needed(self, load, name):
        with pytest.raises(SettingsError, match=f"{name} must be at least 1"):
            load({name: "0"})

    def test_negative_numbers(self, load):
        with pytest.raises(SettingsError, match="JWT_LEEWAY_SECONDS must not be negative"):
            load({"JWT_LEEWAY_SECONDS": "-1"})

    def test_percent_above_100(self, load):
        with pytest.raises(SettingsError, match="COMPLETION_PERCENT must be between 0 and 100"):
            load({"COMPLETION_PERCENT": "150"})

    def test_port_out_of_range(self, load):
        with pytest.raises(SettingsError, match="PORT must be at most 65535"):
            load({"PORT": "70000"})

    def test_bad_trusted_proxy(self, load):
        with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
            load({"TRUSTED_PROXIES": "10.0.0.0/8, not-a-network"})

    def test_trusted_proxies_parse(self, load):
        settings = load({"TRUSTED_PROXIES": "10.0.0.0/8, ::1"})
        assert [str(net) for net in settings.server.trusted_proxy_networks] == ["10.0.0.0/8", "::1/128"]


class TestRedacted:
    def test_secrets_are_masked_and_the_rest_shown(self, load):
        settings = load(
            {
                "JWT_SECRET": GOOD_SECRET,
                "DATABASE_URL": "postgresql://u:db-password@h/d",
                "REDIS_URL": "redis://:redis-password@h:6379/0",
                "ADMIN_EMAIL": "root@example.com",
                "ADMIN_PASSWORD": "admin-password",
            }
        )
        shown = redacted(settings)
        flat = repr(shown)
        for secret in (GOOD_SECRET, "db-password", "redis-password", "admin-password"):
            assert secret not in flat
        assert shown["auth"]["jwt_secret"] == "***"
        assert shown["database"]["url"] == "***"
        assert shown["redis"]["url"] == "***"
        assert shown["admin"]["password"] == "***"
        assert shown["admin"]["email"] == "root@example.com"
        assert shown["server"]["port"] == 8000
        assert shown["app"]["environment"] == "development"

    def test_unset_secrets_stay_visibly_empty(self, load):
        shown = redacted(load({"JWT_SECRET": GOOD_SECRET}))
        assert shown["redis"]["url"] == ""
        assert shown["admin"]["password"] == ""


def _setting_names() -> set[str]:
    names = {item.metadata["env"] for item in fields(Settings) if "env" in item.metadata}
    for section in SECTIONS.values():
        names |= {item.metadata["env"] for item in fields(section)}
    return names


def test_env_example_documents_every_setting():
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    missing = _setting_names() - documented
    assert not missing, f".env.example lacks {sorted(missing)}"
