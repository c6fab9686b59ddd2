# shellcheck shell=bash
# Shared by scripts/run and scripts/test (sourced, not run): the virtualenv and the local services.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
INSTALL_STAMP="$VENV/.reelhouse-install"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ensure_venv [EXTRAS]: create .venv when missing and (re)install the project when
# pyproject.toml or the wanted extras changed since the last install.
ensure_venv() {
    local extras="${1:-}" spec="." wanted
    [[ -n "$extras" ]] && spec=".[$extras]"
    command -v python3 >/dev/null || die "python3 is not installed (Python 3.11 or newer is needed)"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python 3.11 or newer is needed; python3 is $(python3 --version 2>&1)"

    if [[ -x "$VENV/bin/python" ]] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
        say "the virtualenv at .venv is broken; recreating it"
        rm -rf "$VENV"
    fi
    if [[ ! -x "$VENV/bin/python" ]]; then
        say "creating the virtualenv in .venv"
        python3 -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    fi

    wanted="$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -d' ' -f1)"
    local have_hash="" have_extras=""
    if [[ -f "$INSTALL_STAMP" && -x "$VENV/bin/reelhouse" ]]; then
        read -r have_hash have_extras <"$INSTALL_STAMP" || true
    fi
    # An install with the dev extras also serves a plain one, and a plain reinstall keeps them.
    if [[ -z "$extras" && "$have_extras" == "dev" ]]; then
        extras="dev"
        spec=".[dev]"
    fi
    if [[ "$have_hash" == "$wanted" && "$have_extras" == "$extras" ]]; then
        return 0
    fi
    say "installing reelhouse${extras:+ with [$extras]} into .venv"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    (cd "$REPO_ROOT" && "$VENV/bin/python" -m pip install --quiet -e "$spec")
    printf '%s %s\n' "$wanted" "$extras" >"$INSTALL_STAMP"
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }

NODE_MODULES="$REPO_ROOT/node_modules"
NODE_STAMP="$NODE_MODULES/.reelhouse-install"

# ensure_node_modules [prod|all]: the pinned npm packages of package-lock.json in node_modules
# (`npm ci`): prod is hls.js, which the web player serves at /player/vendor/; all adds the
# development ones (tus-js-client for tests/node). Re-run only when package-lock.json or the wanted
# set changed. Node.js and npm are installed when missing and we are root on Debian; otherwise, or
# when npm fails, it says what is missing and carries on: the player then plays HLS natively only.
ensure_node_modules() {
    local want="${1:-all}" wanted have_hash="" have_set=""
    if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
        apt_install nodejs npm || true
    fi
    if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
        say "Node.js and npm are not installed (Debian: apt-get install nodejs npm as root): no hls.js, so the web player plays HLS natively only, and the tus-js-client test is skipped"
        return 0
    fi
    if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 18 ? 1 : 0)'; then
        say "Node.js 18 or newer is needed for the npm packages; node is $(node --version): the web player plays HLS natively only"
        return 0
    fi
    wanted="$(sha256sum "$REPO_ROOT/package-lock.json" | cut -d' ' -f1)"
    if [[ -f "$NODE_STAMP" ]]; then
        read -r have_hash have_set <"$NODE_STAMP" || true
    fi
    # An install with the development packages also serves a production one.
    [[ "$want" == "prod" && "$have_set" == "all" ]] && want="all"
    if [[ "$have_hash" == "$wanted" && "$have_set" == "$want" ]]; then
        return 0
    fi
    local args=(ci --no-audit --no-fund --loglevel=error)
    [[ "$want" == "prod" ]] && args+=(--omit=dev)
    say "installing the npm packages of package-lock.json into node_modules (npm ${args[*]})"
    if (cd "$REPO_ROOT" && npm "${args[@]}" >&2); then
        printf '%s %s\n' "$wanted" "$want" >"$NODE_STAMP"
    else
        say "npm ci failed: without hls.js the web player plays HLS natively only"
    fi
}

apt_updated=0
apt_install() {
    is_root || return 1
    command -v apt-get >/dev/null || return 1
    if [[ "$apt_updated" -eq 0 ]]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null || return 1
        apt_updated=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null >/dev/null
}

# wait_until SECONDS DESCRIPTION COMMAND...: retry COMMAND once a second.
wait_until() {
    local seconds="$1" what="$2"
    shift 2
    local waited=0
    until "$@" >/dev/null 2>&1; do
        ((waited++ < seconds)) || return 1
        sleep 1
    done
    say "$what is up"
}

postgres_answers() { pg_isready -h 127.0.0.1 -p 5432 -q; }
redis_answers() { [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == "PONG" ]]; }

start_postgres() {
    local version
    version="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$version" ]] || return 1
    say "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
}

# ensure_postgres: PostgreSQL on 127.0.0.1:5432 as the tests expect it (user postgres, no password);
# started when installed, installed first when we are root on Debian.
ensure_postgres() {
    if command -v pg_isready >/dev/null && postgres_answers; then
        return 0
    fi
    local installed_now=0
    if ! command -v pg_ctlcluster >/dev/null || [[ -z "$(ls -A /etc/postgresql 2>/dev/null)" ]]; then
        apt_install postgresql \
            || die "PostgreSQL is not installed and cannot be installed here (needs root and apt-get): install it, or point TEST_POSTGRES_URL at a server"
        installed_now=1
    fi
    postgres_answers || start_postgres \
        || die "could not start PostgreSQL: run pg_ctlcluster --skip-systemctl-redirect <version> main start as root or postgres"
    wait_until 60 "PostgreSQL" postgres_answers || die "PostgreSQL did not answer on 127.0.0.1:5432 within 60 s"
    if ((installed_now)); then
        # A fresh Debian cluster asks TCP clients for a password; give the test user one we know.
        su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" </dev/null >/dev/null \
            || die "could not set the password of the new PostgreSQL cluster's postgres user"
        export TEST_POSTGRES_URL="postgresql://postgres:postgres@127.0.0.1:5432/postgres"
    fi
}

ensure_redis() {
    if command -v redis-cli >/dev/null && redis_answers; then
        return 0
    fi
    if ! command -v redis-server >/dev/null; then
        apt_install redis-server \
            || die "Redis is not installed and cannot be installed here (needs root and apt-get): install it, or point TEST_REDIS_URL at a server"
    fi
    if ! redis_answers; then
        say "starting Redis"
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            || die "could not start redis-server"
    fi
    wait_until 30 "Redis" redis_answers || die "Redis did not answer on 127.0.0.1:6379 within 30 s"
}

# ensure_services: the PostgreSQL and Redis the tests use, unless TEST_POSTGRES_URL / TEST_REDIS_URL
# name servers someone else runs (those are only checked, by the tests themselves).
ensure_services() {
    if [[ -z "${TEST_POSTGRES_URL:-}" ]]; then
        ensure_postgres
    else
        say "using PostgreSQL at TEST_POSTGRES_URL"
    fi
    if [[ -z "${TEST_REDIS_URL:-}" ]]; then
        ensure_redis
    else
        say "using Redis at TEST_REDIS_URL"
    fi
    ensure_chromium
    ensure_wrk
    ensure_ffmpeg
}

# ensure_chromium: the headless browser of tests/browser (Debian package chromium at /usr/bin/chromium),
# installed when we are root on Debian; otherwise those tests skip, which is said here.
ensure_chromium() {
    [[ -x /usr/bin/chromium ]] && return 0
    apt_install chromium && [[ -x /usr/bin/chromium ]] && return 0
    say "Chromium is not installed (Debian: apt-get install chromium as root): the browser tests will be skipped"
}

# ensure_wrk: the HTTP load generator of scripts/bench (its smoke run is part of the suite),
# installed when we are root on Debian; otherwise the benchmark says it is missing.
ensure_wrk() {
    command -v wrk >/dev/null && return 0
    apt_install wrk && command -v wrk >/dev/null && return 0
    say "wrk is not installed (Debian: apt-get install wrk as root): scripts/bench cannot run"
}

# ensure_ffmpeg: the ffmpeg CLI the media tests play the packaged HLS with (the pipeline itself uses PyAV),
# installed when we are root on Debian; otherwise that test skips locally and fails under CI.
ensure_ffmpeg() {
    command -v ffmpeg >/dev/null && return 0
    apt_install ffmpeg && command -v ffmpeg >/dev/null && return 0
    say "ffmpeg is not installed (Debian: apt-get install ffmpeg as root): the HLS playback check will be skipped"
}
