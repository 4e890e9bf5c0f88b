# Shared set-up steps for scripts/test and scripts/demo. Source it; do not run it.
# Each step checks first and installs only what is missing, so a second run is quick.

DESKBELL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${DESKBELL_VENV:-$DESKBELL_ROOT/.venv}"
PY="$VENV/bin/python"

# Qt's runtime libraries (offscreen and xcb); see docs/deployment notes in README.
QT_DEB_PACKAGES=(libglib2.0-0 libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
  fonts-dejavu-core)
# What the tests drive for real: a private D-Bus, Xvfb, dunst, a tray host, the
# Secret Service keyring, a browser for the widget, screenshots.
TEST_DEB_PACKAGES=("${QT_DEB_PACKAGES[@]}" dbus-daemon dbus-bin xvfb dunst trayer xdotool
  x11-apps x11-utils imagemagick gnome-keyring libglib2.0-bin chromium chromium-driver
  wixl msitools lintian desktop-file-utils debootstrap rpm haproxy nginx-light tinyproxy
  microsocks xdg-utils)
# wixl/msitools: the MSI's tables are built and read in tests/packaging; lintian,
# desktop-file-utils, debootstrap: packaging/test-deb; rpm: the .rpm is queried;
# haproxy, nginx-light: the reverse proxies of tests/backend/limits/test_behind_proxy.py;
# tinyproxy, microsocks: real HTTP and SOCKS proxies for the tray app's proxy tests;
# xdg-utils: xdg-open/xdg-mime for the deskbell:// link test.

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ensure_debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then SUDO=sudo; else
      die "these Debian packages are missing: ${missing[*]} (install them as root)"
    fi
  fi
  say "installing Debian packages: ${missing[*]}"
  ${SUDO:-} apt-get update -qq
  DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# Node.js and npm run the OpenID provider of the single sign-on tests (oidc-provider, from
# tests/backend/sso/provider/package-lock.json; the tests `npm ci` it into the cache).
# Any Node 18 or newer will do: Debian's packages only when no node/npm is on PATH (a
# NodeSource nodejs carries its own npm, which Debian's npm package would conflict with).
ensure_node() {
  if command -v node >/dev/null && command -v npm >/dev/null; then return 0; fi
  ensure_debian_packages nodejs npm
}

# uv, at the version pinned (with hashes) in scripts/lib/uv-requirements.txt, in its own
# small environment under the user's cache: it installs everything else from uv.lock.
UV_REQUIREMENTS="$DESKBELL_ROOT/scripts/lib/uv-requirements.txt"
ensure_uv() {
  local tag tools
  tag="$(sha256sum "$UV_REQUIREMENTS" | cut -c1-12)"
  tools="${XDG_CACHE_HOME:-$HOME/.cache}/deskbell/uv-$tag"
  UV="$tools/bin/uv"
  [ -x "$UV" ] && return 0
  say "installing uv (the installer that reads uv.lock) into $tools"
  rm -rf "$tools"
  "${DESKBELL_PYTHON:-python3}" -m venv "$tools" || die "python3 -m venv failed: install python3-venv"
  local log="$tools/pip-install.log"
  if ! "$tools/bin/python" -m pip install -q --require-hashes --only-binary :all: \
        -r "$UV_REQUIREMENTS" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -rf "$tools"
    die "could not install uv (full log above); check the network or a pip proxy setting"
  fi
}

# ensure_venv EXTRAS [--inexact]: the virtual environment $VENV holds this project
# (editable) and exactly the versions uv.lock pins for the given extras (comma-separated).
# --locked refuses a uv.lock that no longer matches pyproject.toml (run scripts/upgrade-deps
# or `uv lock`). With --inexact, packages of other extras already there stay (the demo
# does not strip the test tools out of a shared .venv); without it, anything not in the
# lock for these extras is removed. A no-op sync takes a fraction of a second.
ensure_venv() {
  local extras="$1" mode="${2:-}" args=() extra
  ensure_uv
  for extra in ${extras//,/ }; do args+=(--extra "$extra"); done
  [ "$mode" = "--inexact" ] && args+=(--inexact)
  local log
  log="$(mktemp -t deskbell-uv-sync.XXXXXX)"
  if ! UV_PROJECT_ENVIRONMENT="$VENV" UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy \
       "$UV" sync --locked --quiet --python "${DESKBELL_PYTHON:-python3}" \
       --project "$DESKBELL_ROOT" "${args[@]}" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    die "installing from uv.lock failed (above). If pyproject.toml changed, run scripts/upgrade-deps"
  fi
  rm -f "$log"
  # What the environment now holds, for tests/test_lock.py to compare it with the lock:
  # an --inexact sync adds its extras to those already there and keeps their mode.
  local record="$VENV/.deskbell-sync" kept="exact"
  if [ "$mode" = "--inexact" ] && [ -f "$record" ]; then
    extras="$(sed -n 1p "$record"),$extras"
    kept="$(sed -n 2p "$record")"
  elif [ "$mode" = "--inexact" ]; then
    kept="inexact"
  fi
  extras="$(echo "$extras" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -)"
  printf '%s\n%s\n' "$extras" "$kept" > "$record"
  export DESKBELL_UV="$UV"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port="$1" name="$2" i
  for i in $(seq 1 100); do port_open "$port" && return 0; sleep 0.1; done
  die "$name did not start on port $port"
}

# The services the scale-out tests and the benchmarks use; this kind of machine starts
# them before a session, and this starts any that stopped.
ensure_services() {
  if ! port_open 5432; then
    say "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
    wait_port 5432 PostgreSQL
  fi
  if ! port_open 6379; then
    say "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_port 6379 Redis
  fi
  if ! port_open 1883 && command -v mosquitto >/dev/null; then
    say "starting Mosquitto"
    mosquitto -d -c /etc/mosquitto/mosquitto.conf
    wait_port 1883 Mosquitto
  fi
  if ! port_open 4222 && [ -x /usr/sbin/nats-server ]; then
    say "starting NATS"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
    wait_port 4222 NATS
  fi
}
