#!/bin/sh
# Installs onsight as a systemd service:
#   code      -> /opt/onsight              (a copy of this built checkout, development dependencies pruned: run `npm ci` first)
#   config    -> /etc/onsight/onsight.yaml (the example config, only if none is there yet)
#   password  -> /etc/onsight/qualys.pass  (created empty, 0600 root, if missing; handed to the
#                service as the systemd credential "qualys": config `scanner.credential: qualys`)
#   state     -> /var/lib/onsight          (StateDirectory=, owned by the service's dynamic user)
#   unit      -> /etc/systemd/system/onsight.service, plus drop-ins the config needs:
#                low-port.conf  CAP_NET_BIND_SERVICE when a listener uses a port below 1024
#                log-files.conf group adm when the config tails files (type: file inputs)
# then `systemctl daemon-reload`. It never enables or starts the service.
#
# usage: systemd/install.sh [--root DIR] [--prefix DIR] [--config FILE] [--no-copy] [--no-systemctl]
#   --root DIR      install under DIR (a chroot or image; implies --no-systemctl)
#   --prefix DIR    where the code goes (default /opt/onsight)
#   --config FILE   the config to look at for ports and file inputs (default ROOT/etc/onsight/onsight.yaml)
#   --no-copy       do not copy the code (it is already at --prefix)
#   --no-systemctl  do not run systemctl daemon-reload
set -eu

ROOT=""
PREFIX=/opt/onsight
CONFIG=""
COPY=1
RELOAD=1
SRC=$(cd "$(dirname "$0")/.." && pwd)

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=${2:?--root needs a directory}; RELOAD=0; shift 2 ;;
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --config) CONFIG=${2:?--config needs a file}; shift 2 ;;
    --no-copy) COPY=0; shift ;;
    --no-systemctl) RELOAD=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '%s\n' "$*"; }
NODE=$(command -v node || true)
if [ -z "$NODE" ]; then echo "install.sh: node (20.19+) is not on PATH" >&2; exit 1; fi
if ! "$NODE" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "install.sh: node $("$NODE" --version) is too old; onsight needs 20.19+, 22 or 24" >&2; exit 1
fi
if [ ! -f "$SRC/dist/src/cli/main.js" ]; then
  echo "install.sh: $SRC is not built; run 'npm ci' (or 'npm run build') there first" >&2; exit 1
fi

# 1. the code
if [ "$COPY" = 1 ] && [ "$SRC" != "$ROOT$PREFIX" ]; then
  mkdir -p "$ROOT$PREFIX"
  for p in package.json package-lock.json bin dist node_modules config parsers README.md LICENSE; do
    [ -e "$SRC/$p" ] || continue
    rm -rf "$ROOT$PREFIX/$p"
    cp -a "$SRC/$p" "$ROOT$PREFIX/$p"
  done
  # the service needs the runtime dependencies only: drop the build and test tools
  if command -v npm >/dev/null 2>&1; then
    if (cd "$ROOT$PREFIX" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null 2>&1); then
      say "deps:     development dependencies removed (npm prune --omit=dev)"
    else
      say "deps:     npm prune --omit=dev failed; development dependencies left in $ROOT$PREFIX/node_modules"
    fi
  fi
  chown -R root:root "$ROOT$PREFIX" 2>/dev/null || true
  chmod -R u+rwX,go+rX,go-w "$ROOT$PREFIX"
  say "code:     $ROOT$PREFIX"
fi

# 2. config and credential
ETC="$ROOT/etc/onsight"
mkdir -p "$ETC" "$ETC/parsers"
chmod 0755 "$ETC" "$ETC/parsers"
if [ ! -f "$ETC/onsight.yaml" ]; then
  # the service reads the password as the systemd credential "qualys", not from a file of its own
  sed -e 's|^  passwordFile: /etc/onsight/qualys.pass|  credential: qualys   # LoadCredential=qualys:/etc/onsight/qualys.pass (onsight.service)|' \
      -e 's|^  # credential: qualys .*|  # passwordFile: /etc/onsight/qualys.pass  (not readable by the service user; use the credential)|' \
      "$SRC/config/onsight.example.yaml" > "$ETC/onsight.yaml"
  chmod 0644 "$ETC/onsight.yaml"
  say "config:   $ETC/onsight.yaml (the example: edit inputs, policy, regions and scanner before starting)"
else
  say "config:   $ETC/onsight.yaml (kept)"
fi
if [ ! -e "$ETC/qualys.pass" ]; then
  (umask 077; : > "$ETC/qualys.pass")
  say "password: $ETC/qualys.pass (empty, 0600 root: put the Qualys API password in it)"
fi
chmod 0600 "$ETC/qualys.pass"

# 3. the unit, pointing at this node and prefix
UNITDIR="$ROOT/etc/systemd/system"
mkdir -p "$UNITDIR"
sed -e "s|^ExecStart=/usr/bin/node /opt/onsight/|ExecStart=$NODE $PREFIX/|" \
    -e "s|file:///opt/onsight/|file://$PREFIX/|" \
    "$SRC/systemd/onsight.service" > "$UNITDIR/onsight.service"
chmod 0644 "$UNITDIR/onsight.service"
say "unit:     $UNITDIR/onsight.service"

# 4. drop-ins the config needs (read with onsight's own config loader)
[ -n "$CONFIG" ] || CONFIG="$ETC/onsight.yaml"
DROPIN="$UNITDIR/onsight.service.d"
NEEDS=$("$NODE" --input-type=module -e '
  const { loadConfig } = await import(process.argv[1]);
  const c = loadConfig(process.argv[2]).config;
  // every listener: syslog (udp://host:514) and HTTP inputs (host:443), then the status page
  const ports = c.inputs.filter((i) => i.type === "syslog" || i.type === "http").map((i) => Number(i.listen.split(":").pop()));
  if (c.http.enabled) ports.push(Number(c.http.listen.split(":").pop()));
  const out = [];
  if (ports.some((p) => p > 0 && p < 1024)) out.push("low-port:" + ports.filter((p) => p > 0 && p < 1024).join(","));
  if (c.inputs.some((i) => i.type === "file")) out.push("files");
  console.log(out.join(" "));
' "$SRC/dist/src/config/load.js" "$CONFIG" 2>/dev/null) || {
  echo "install.sh: warning: could not read $CONFIG (run 'onsight config check --config $CONFIG'); no drop-ins written" >&2
  NEEDS=""
}
rm -f "$DROPIN/low-port.conf" "$DROPIN/log-files.conf"
for n in $NEEDS; do
  mkdir -p "$DROPIN"
  case "$n" in
    low-port:*)
      cat > "$DROPIN/low-port.conf" <<UNIT
# written by install.sh: the config listens on port(s) ${n#low-port:}, below 1024
[Service]
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
AmbientCapabilities=CAP_NET_BIND_SERVICE
# a capability held in a private user namespace does not count for the host's network
PrivateUsers=no
UNIT
      say "drop-in:  $DROPIN/low-port.conf (CAP_NET_BIND_SERVICE for port(s) ${n#low-port:})" ;;
    files)
      cat > "$DROPIN/log-files.conf" <<UNIT
# written by install.sh: the config tails log files; group adm reads /var/log on Debian
[Service]
SupplementaryGroups=adm
# group permissions need the real group ids, not a private user namespace
PrivateUsers=no
UNIT
      say "drop-in:  $DROPIN/log-files.conf (group adm, to read the log files)" ;;
  esac
done

# 5. tell systemd
if [ "$RELOAD" = 1 ]; then
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    say "systemd:  daemon-reload done"
  else
    say "systemd:  not running here; run 'systemctl daemon-reload' on the target"
  fi
fi
say ""
say "next: edit $ETC/onsight.yaml, check it with"
say "  $NODE $PREFIX/bin/onsight.js config check --config /etc/onsight/onsight.yaml"
say "  $NODE $PREFIX/bin/onsight.js doctor --config /etc/onsight/onsight.yaml"
say "then: systemctl enable --now onsight; journalctl -u onsight -f; reload certificates with systemctl reload onsight"
