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
  wixl msitools lintian desktop-file-utils debootstrap rpm haproxy nginx-light)
# wixl/msitools: the MSI's tables are built and read in tests/packaging; lintian,
# desktop-file-utils, debootstrap: packaging/test-deb; rpm: the .rpm is queried;
# haproxy, nginx-light: the reverse proxies of tests/backend/limits/test_behind_proxy.py.

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

# ensure_venv EXTRAS: a virtual environment with this project installed (editable)
# with the given extras (comma-separated); reinstalled when pyproject.toml changes or an
# extra is missing. The "test" extra includes "desktop" and "scale".
ensure_venv() {
  local extras="$1" stamp hash have want extra missing=""
  hash="$(sha256sum "$DESKBELL_ROOT/pyproject.toml" | cut -c1-16)"
  stamp="$VENV/.deskbell-installed"
  if [ ! -x "$PY" ]; then
    say "creating the virtual environment in $VENV"
    "${DESKBELL_PYTHON:-python3}" -m venv "$VENV" || die "python3 -m venv failed: install python3-venv"
  fi
  local installed_hash="" installed_extras=""
  if [ -f "$stamp" ]; then
    installed_hash="$(sed -n 1p "$stamp")"
    installed_extras="$(sed -n 2p "$stamp")"
  fi
  have=",$installed_extras,"
  case "$have" in *,test,*) have="$have,desktop,scale," ;; esac
  for extra in ${extras//,/ }; do
    case "$have" in *",$extra,"*) ;; *) missing="$missing,$extra" ;; esac
  done
  if [ "$installed_hash" != "$hash" ] || [ -n "$missing" ]; then
    want="$extras"
    if [ "$installed_hash" = "$hash" ]; then want="$installed_extras,$extras"; fi
    want="$(echo "$want" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -)"
    say "installing Deskbell and its dependencies ($want); a minute or two the first time"
    local log="$VENV/pip-install.log"
    if ! { "$PY" -m pip install -q --upgrade pip && \
           "$PY" -m pip install -q -e "$DESKBELL_ROOT[$want]"; } >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      die "pip install failed (full log: $log)"
    fi
    printf '%s\n%s\n' "$hash" "$want" > "$stamp"
  fi
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
