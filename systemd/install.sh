#!/bin/sh
# Installs onsight as a systemd service:
#   code      -> /opt/onsight              (a copy of this built checkout, development dependencies pruned: run `npm ci` first)
#   config    -> /etc/onsight/onsight.yaml (the example config, only if none is there yet)
#   password  -> /etc/onsight/qualys.pass  (created empty, 0600 root, if missing; handed to the
#                service as the systemd credential "qualys": config `scanner.credential: qualys`)
#   state     -> /var/lib/onsight          (StateDirectory=, owned by the service's dynamic user)
#   unit      -> /etc/systemd/system/onsight.service, plus drop-ins the config needs:
#                low-port.conf    CAP_NET_BIND_SERVICE when a listener uses a port below 1024
#                log-files.conf   group adm when the config tails files (type: file inputs)
#                lease-files.conf the group(s) that open the way to the lease databases of
#                                 type: lease inputs when a file or directory on it is closed
#                                 to others (see step 4; warns of what no group can open)
# then `systemctl daemon-reload`. It never enables or starts the service.
#
# usage: systemd/install.sh [--root DIR] [--prefix DIR] [--config FILE] [--no-copy] [--no-systemctl]
#   --root DIR      install under DIR (a chroot or image; implies --no-systemctl)
#   --prefix DIR    where the code goes (default /opt/onsight)
#   --config FILE   the config to look at for ports, file and lease inputs (default ROOT/etc/onsight/onsight.yaml);
#                   the lease databases it names are looked up on this machine as named, also with --root
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
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
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
  if (c.inputs.some((i) => i.type === "lease")) out.push("leases");
  console.log(out.join(" "));
' "$SRC/dist/src/config/load.js" "$CONFIG" 2>/dev/null) || {
  echo "install.sh: warning: could not read $CONFIG (run 'onsight config check --config $CONFIG'); no drop-ins written" >&2
  NEEDS=""
}

# Lease databases (type: lease) are read in place, where the DHCP server keeps them, by the
# service's dynamic user: a member of no group, never the owner. For each one this finds what
# stands in the way (a directory on the path others may not search, the file others may not
# read; for the journals, kea and isc-dhcpd, also the file's directory others may not list: the
# input lists it to follow Kea's lease file cleanup (LFC) and rotations, and reads Kea's
# compacted `.1`/`.2` beside it) and writes lease-files.conf with SupplementaryGroups= the groups
# that open each of them. It warns, and adds nothing, for what no group can open: a path that
# does not exist yet, an obstacle whose group is root, or one whose group bits are closed too.
# The paths are looked up on this machine as the config names them (also with --root).
# What the packages do (Debian 12, checked with `apt-get download` and dpkg-deb -e/-x):
# - isc-dhcp-server 4.4.3-P1-2 ships /var/lib/dhcp 0755 root:root, and its init script creates
#   dhcpd.leases with `touch` as root: 0644 under the usual umask 022. Nothing needed.
# - dnsmasq-base 2.90-4~deb12u2 ships /var/lib/misc 0755 root:root; dnsmasq sets umask(022)
#   before it creates its lease file ("create leases and pid files as 0644", src/dnsmasq.c).
# - kea-common 2.2.0-6 creates the system user and group _kea; /var/lib/kea is the
#   StateDirectory=kea of kea-dhcp4-server.service (User=_kea, no StateDirectoryMode=, so
#   systemd's default 0755, man systemd.exec), and kea-dhcp4 2.2.0 creates kea-leases4.csv as
#   the umask allows (0644 when run here). But ISC's own packages keep /var/lib/kea closed to
#   others (kb.isc.org/docs/kea-files: data directory, others: none) and openSUSE's tmpfiles make
#   it `750 keadhcp keadhcp`: there Kea's group (_kea, keadhcp) opens it.
lease_files() {
  LEASES=$("$NODE" --input-type=module -e '
    const { loadConfig } = await import(process.argv[1]);
    const fs = await import("node:fs");
    const { dirname, resolve } = await import("node:path");
    const { execFileSync } = await import("node:child_process");
    const c = loadConfig(process.argv[2]).config;
    const clean = (s) => String(s).replace(/[\x00-\x1f\x7f]/g, "?");
    const names = new Map();
    const groupName = (gid) => {
      if (!names.has(gid)) {
        let n = String(gid);
        try {
          const g = execFileSync("getent", ["group", String(gid)], { encoding: "utf8" }).split(":")[0];
          if (/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(g)) n = g;
        } catch { /* no name: SupplementaryGroups= takes the number */ }
        names.set(gid, n);
      }
      return names.get(gid);
    };
    const mode = (st) => (st.mode & 0o7777).toString(8).padStart(4, "0");
    const ACCESS = { 1: "search (x)", 4: "read (r)", 5: "list (r-x)" };
    const checks = new Map(); // one entry per file or directory (dev:ino), with the access the input needs
    const out = [];
    const clear = new Set(); // lease databases nothing stands in the way of
    for (const inp of c.inputs.filter((i) => i.type === "lease")) {
      // a relative path is relative to the WorkingDirectory of the unit
      const file = resolve("/var/lib/onsight", inp.path);
      const want = (p, need) => {
        const st = fs.statSync(p);
        const k = st.dev + ":" + st.ino;
        const o = checks.get(k);
        if (o) {
          o.need |= need;
          o.leases.add(file);
        } else checks.set(k, { path: p, st, need, leases: new Set([file]) });
      };
      try {
        const real = fs.realpathSync(file);
        for (const f of new Set([file, real])) for (let d = dirname(f); ; d = dirname(d)) { want(d, 1); if (d === "/") break; }
        if (inp.format !== "dnsmasq") want(dirname(file), 5); // journals: rotations and the Kea LFC files are found by listing
        want(file, 4);
        if (fs.statSync(file).isFile()) clear.add(file);
        else out.push(`warn: lease database ${clean(file)} is not a file`);
        if (inp.format === "kea") for (const sfx of [".1", ".2"]) if (fs.existsSync(file + sfx)) want(file + sfx, 4);
      } catch (err) {
        out.push(`warn: lease database ${clean(file)} (${inp.format}) ${err.code === "ENOENT" ? "does not exist yet" : "cannot be checked (" + clean(err.code ?? err.message) + ")"}: ` +
          "the service may not be able to read it once it exists; re-run install.sh when it does");
      }
    }
    const groups = new Set();
    for (const { path, st, need, leases } of checks.values()) {
      const other = st.mode & 7, group = (st.mode >> 3) & 7;
      if ((other & need) === need) continue;
      for (const l of leases) clear.delete(l);
      const what = `${st.isDirectory() ? "directory" : "file"} ${clean(path)} (${mode(st)}, group ${groupName(st.gid)})`;
      const bits = need === 1 ? "x" : need === 4 ? "r" : "rx";
      const stop = `needed to read ${[...leases].map(clean).join(" and ")}`;
      if (st.gid === 0) out.push(`warn: ${what}: others may not ${ACCESS[need]} it, ${stop}, and its group is root, which install.sh never gives the service: give it a group of its own (chgrp GROUP; chmod g+${bits}) or open it to others (chmod o+${bits}), then re-run install.sh`);
      else if ((group & need) !== need) out.push(`warn: ${what}: neither others nor its group may ${ACCESS[need]} it, ${stop}: chmod g+${bits} it, then re-run install.sh`);
      else {
        groups.add(st.gid);
        out.push(`why: ${what}: its group may ${ACCESS[need]} it`);
      }
    }
    // a member of the group of a file gets its group bits, not its others bits: none may be fewer
    for (const { path, st, need } of checks.values()) {
      if (groups.has(st.gid) && (((st.mode >> 3) & need) !== need) && ((st.mode & need) === need)) {
        out.push(`warn: ${clean(path)} (${mode(st)}): others may ${ACCESS[need]} it but not its group ${groupName(st.gid)}, which the service joins for another path, so the service no longer may: chmod g+${need === 1 ? "x" : need === 4 ? "r" : "rx"} it`);
      }
    }
    if (groups.size) out.push("groups: " + [...groups].map(groupName).join(" "));
    for (const l of clear) out.push(`clear: ${clean(l)}`);
    console.log(out.join("\n"));
  ' "$SRC/dist/src/config/load.js" "$CONFIG" 2>/dev/null) || {
    echo "install.sh: warning: could not check the lease databases of $CONFIG; lease-files.conf not written" >&2
    return 0
  }
  printf '%s\n' "$LEASES" | sed -n 's/^warn: /install.sh: warning: /p' >&2
  printf '%s\n' "$LEASES" | sed -n 's/^clear: \(.*\)/leases:   \1 (others may read it: no group needed)/p'
  LEASE_GROUPS=$(printf '%s\n' "$LEASES" | sed -n 's/^groups: //p')
  [ -n "$LEASE_GROUPS" ] || return 0
  mkdir -p "$DROPIN"
  {
    echo "# written by install.sh: the config reads DHCP lease databases (type: lease) that others may"
    echo "# not reach; these groups may:"
    printf '%s\n' "$LEASES" | sed -n 's/^why: /#   /p'
    cat <<UNIT
[Service]
SupplementaryGroups=$LEASE_GROUPS
# group permissions need the real group ids, not a private user namespace
PrivateUsers=no
UNIT
  } > "$DROPIN/lease-files.conf"
  say "drop-in:  $DROPIN/lease-files.conf (group(s) $LEASE_GROUPS, to read the lease databases)"
}

rm -f "$DROPIN/low-port.conf" "$DROPIN/log-files.conf" "$DROPIN/lease-files.conf"
for n in $NEEDS; do
  [ "$n" = leases ] || mkdir -p "$DROPIN"
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
    leases)
      lease_files ;;
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
