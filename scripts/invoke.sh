#!/usr/bin/env bash
# `make invoke` (issue 12): every sample event in events/ through SAM's own emulator (`sam local invoke`), checked
# against events/expected.json, then a `sam local start-api` smoke; offline, nothing routed out of this machine.
#
#   1. docker.io, iptables and debootstrap from Debian when missing (root; apt-get);
#   2. `sam build` for x86_64 (template parameter Architecture; the deployed stack stays arm64) into .local/sam-x86_64,
#      in the background while steps 3-5 run;
#   3. a private network: the bridge wsam0 ($NET.0/24) with the host on $NET.1, the function containers on
#      $NET.128-254 and, in a network namespace of their own, the local services on $NET.2: DynamoDB Local (:8000),
#      moto (S3, CloudFront; :5000) and the provider's files (:8001), reachable only through the bridge; nothing is
#      forwarded between the bridge and any other interface;
#   4. our own dockerd on that bridge (state under .local/sam-invoke, its own socket, no iptables NAT, no IP
#      forwarding, published ports on 127.0.0.1 only), stopped by pid when this script ends;
#   5. the Lambda base image SAM asks for, built once without a registry (debootstrap trixie = Python 3.13, AWS's
#      runtime interface client from PyPI) and cached as .local/sam-invoke/<image>-<recipe>.tar, loaded after that;
#   6. local/wallet_local/invoke.py: the services, the demo player and its sample session, every event, the
#      start-api round, the table. Exit 0 when every reply is the expected one.
#
# Arguments go to invoke.py (e.g. `bash scripts/invoke.sh --chain operator --no-start-api`).
# Exit 77 with a "SKIPPED:" line where docker cannot run at all (not root, no kernel support): scripts/test.sh shows
# the stage as SKIPPED, never as passed.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=.local/sam-invoke
BUILD=.local/sam-x86_64
TEMPLATE=${WALLET_INVOKE_TEMPLATE:-template.yaml}
NET=${WALLET_INVOKE_NET:-10.213.7}
BRIDGE=wsam0
SVC_NS=wallet-sam-svc
SVC_VETH=wsam-svc
SVC_IP=$NET.2
DEBIAN_SUITE=trixie          # Debian's Python 3.13, the template's runtime
AWSLAMBDARIC=awslambdaric==4.2.2
START=$SECONDS

say() { printf '\033[1m[invoke]\033[0m %s\n' "$*"; }
skip() {
    printf '\n#####################################################################################################\n'
    printf '[invoke] SKIPPED: %s\n' "$*"
    printf '#####################################################################################################\n'
    exit 77
}
phase() { say "$1 ($((SECONDS - PHASE_START))s)"; PHASE_START=$SECONDS; }
PHASE_START=$SECONDS

[ "$(id -u)" = 0 ] || skip "not root: our own dockerd, its bridge and the services' network namespace need root"
[ -x .venv/bin/sam ] || { say "no .venv/bin/sam: run make install first"; exit 1; }
mkdir -p "$WORK"
exec 9>"$WORK/lock"
flock -n 9 || { say "another make invoke holds $WORK/lock"; exit 1; }

# --- 1. packages --------------------------------------------------------------------------------------------------
apt_install() {
    command -v apt-get >/dev/null || return 1
    [ -e .local/.apt-updated ] || { apt-get update -qq && touch .local/.apt-updated; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
# The image SAM asks for (public.ecr.aws/lambda/python:3.13-x86_64 with SAM 1.170), from SAM itself.
IMAGE=$(.venv/bin/python -c 'from samcli.local.docker.lambda_image import LambdaImage, Runtime
print(LambdaImage._INVOKE_REPO_PREFIX + "/" + Runtime.get_image_name_tag("python3.13", "x86_64"))')
# The recipe of the base image: a change to any of it builds the image again.
BOOTSTRAP='#!/bin/sh
# The python3.13 runtime bootstrap: the runtime interface client runs $_HANDLER (as in AWS'"'"'s image).
export PYTHONPATH="/var/task:/opt/python/lib/python3.13/site-packages:/opt/python:/var/runtime"
export AWS_EXECUTION_ENV=AWS_Lambda_python3.13
exec /usr/bin/python3.13 -m awslambdaric "$_HANDLER"'
RECIPE="$IMAGE $DEBIAN_SUITE python3,ca-certificates $AWSLAMBDARIC $BOOTSTRAP"
IMAGE_TAR=$WORK/$(printf %s "$IMAGE" | tr '/:' '__')-$(printf %s "$RECIPE" | sha256sum | cut -c1-12).tar
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v iptables >/dev/null || missing+=(iptables)
[ -f "$IMAGE_TAR" ] || command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (Debian)"
    if ! apt_install "${missing[@]}"; then
        command -v dockerd >/dev/null || skip "no dockerd, and apt-get could not install docker.io"
        say "could not install ${missing[*]}"; exit 1
    fi
    phase "installed ${missing[*]}"
fi
command -v docker >/dev/null || { say "no docker CLI (the docker.io package has one)"; exit 1; }

# --- cleanup (also of a run that was killed) ------------------------------------------------------------------------
DOCKERD_PID=
SAM_BUILD_PID=
# Nothing is forwarded between the bridge and any other interface, whatever the host's ip_forward says; and the
# containers open no connection to the host itself (they need only the services' namespace; SAM's own connections to
# them go the other way).
FIREWALL_RULES=(
    "FORWARD -i $BRIDGE ! -o $BRIDGE -j DROP"
    "FORWARD -o $BRIDGE ! -i $BRIDGE -j DROP"
    "INPUT -i $BRIDGE -m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP"
)
cleanup() {
    local pid
    if [ -n "$SAM_BUILD_PID" ]; then
        kill -- "-$SAM_BUILD_PID" 2>/dev/null || true
        wait "$SAM_BUILD_PID" 2>/dev/null || true
    fi
    SAM_BUILD_PID=
    if [ -z "$DOCKERD_PID" ] && [ -f "$WORK/dockerd.pid" ]; then
        DOCKERD_PID=$(cat "$WORK/dockerd.pid")
        # Only our dockerd: the pid must still be a dockerd using our socket.
        tr '\0' ' ' <"/proc/$DOCKERD_PID/cmdline" 2>/dev/null | grep -q -- "-H unix://$PWD/$WORK/docker.sock" ||
            DOCKERD_PID=
    fi
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        kill "$DOCKERD_PID"
        for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$DOCKERD_PID" 2>/dev/null && kill -9 "$DOCKERD_PID"
    fi
    DOCKERD_PID=
    rm -f "$WORK/dockerd.pid"
    if ip netns list 2>/dev/null | grep -qw "^$SVC_NS"; then
        # Only our services run in this namespace (invoke.py stops them; this is for a run that was killed).
        for pid in $(ip netns pids "$SVC_NS" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
        sleep 0.5
        for pid in $(ip netns pids "$SVC_NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$SVC_NS" || true
    fi
    ip link del "$SVC_VETH" 2>/dev/null || true
    ip link del "$BRIDGE" 2>/dev/null || true
    if command -v iptables >/dev/null; then
        for rule in "${FIREWALL_RULES[@]}"; do
            # shellcheck disable=SC2086
            while iptables -C $rule 2>/dev/null; do iptables -D $rule; done
        done
    fi
    for dir in "$WORK/rootfs" "$WORK/docker"; do
        if mountpoint -q "$dir"; then umount "$dir" || umount -l "$dir"; fi
    done
}
PY_PID=
# A signal: invoke.py first (it stops its sam processes and services), then the rest.
trap 'cleanup' EXIT
trap 'if [ -n "$PY_PID" ]; then kill -TERM "$PY_PID" 2>/dev/null; wait "$PY_PID"; fi; exit 130' INT TERM
cleanup

# --- 2. sam build for x86_64, in the background while the rest gets ready ----------------------------------------
grep -qE '^  Architecture:' "$TEMPLATE" || {
    say "$TEMPLATE has no Architecture parameter (arm64 | x86_64, default arm64): the emulator needs an x86_64 build"
    exit 1
}
OVERRIDES=("file://$PWD/parameters/local.yaml" Architecture=x86_64)
# Its own process group (setsid), so that an early exit stops it and its pip children together.
# WALLET_LAYER_ARCH: the layer's wheels for the same architecture (layers/wallet/Makefile).
WALLET_LAYER_ARCH=x86_64 PYENV_VERSION=3.11.7:3.13.0 AWS_MAX_ATTEMPTS=1 SAM_CLI_TELEMETRY=0 setsid .venv/bin/sam build --template "$TEMPLATE" \
    --build-dir "$BUILD/build" --cache-dir "$BUILD/cache" --cached --parameter-overrides "${OVERRIDES[@]}" \
    >"$WORK/sam-build.log" 2>&1 &
SAM_BUILD_PID=$!
SAM_BUILD_START=$SECONDS

# --- 3. the network: a bridge with no way out, the services in their own namespace on it -------------------------
ip link add "$BRIDGE" type bridge 2>/dev/null || skip "cannot create a network bridge (no kernel support?)"
ip addr add "$NET.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
ip netns add "$SVC_NS" || skip "cannot create a network namespace (no kernel support?)"
ip link add "$SVC_VETH" type veth peer name eth0 netns "$SVC_NS"
ip link set "$SVC_VETH" master "$BRIDGE" up
ip -n "$SVC_NS" addr add "$SVC_IP/24" dev eth0
ip -n "$SVC_NS" link set eth0 up
ip -n "$SVC_NS" link set lo up
# The namespace has no default route. The firewall rules above, on the host:
FIREWALLED=1
for rule in "${FIREWALL_RULES[@]}"; do
    # shellcheck disable=SC2086
    iptables -I $rule 2>/dev/null || FIREWALLED=0
done
if [ $FIREWALLED = 0 ]; then
    [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 0 ] || { say "cannot add iptables rules, and ip_forward=1"; exit 1; }
    say "WARNING: no iptables rules (ip_forward=0 still keeps the containers in); they can reach the host itself"
fi

# --- 4. our dockerd ------------------------------------------------------------------------------------------------
EXEC_ROOT=$PWD/$WORK/exec
# containerd's sockets live there, and a socket path has at most 108 bytes: a deep checkout uses /run instead.
if [ ${#EXEC_ROOT} -gt 60 ]; then EXEC_ROOT=/run/wallet-sam-$(printf %s "$PWD" | sha256sum | cut -c1-8); fi
mkdir -p "$WORK/docker" "$EXEC_ROOT"
# dockerd's state on a tmpfs: building SAM's image for every invoke extracts the layer (4,000 files) on each one,
# much faster in memory. WALLET_INVOKE_TMPFS=0 keeps it on disk.
if [ "${WALLET_INVOKE_TMPFS:-1}" = 1 ]; then
    mount -t tmpfs -o size=8g,mode=0710 wallet-sam-docker "$WORK/docker"
fi
echo '{}' >"$WORK/daemon.json"
export DOCKER_HOST="unix://$PWD/$WORK/docker.sock"
dockerd --config-file "$WORK/daemon.json" --data-root "$PWD/$WORK/docker" --exec-root "$EXEC_ROOT" \
    --pidfile "$PWD/$WORK/dockerd.pid" -H "$DOCKER_HOST" \
    --bridge "$BRIDGE" --fixed-cidr "$NET.128/25" --iptables=false --ip6tables=false --ip-masq=false \
    --ip-forward=false --containerd-namespace wallet-sam --containerd-plugins-namespace wallet-sam-plugins \
    >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 120); do
    docker version >/dev/null 2>&1 && break
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 0.25
done
if ! docker version >/dev/null 2>&1; then
    reason=$(grep -E 'level=(error|fatal)|failed to start' "$WORK/dockerd.log" | tail -1 | cut -c1-300)
    skip "dockerd could not start here: ${reason:-see $WORK/dockerd.log}"
fi
phase "dockerd $(docker version -f '{{.Server.Version}}') up on $DOCKER_HOST (bridge $BRIDGE, $NET.0/24, no NAT)"

# --- 5. the base image ---------------------------------------------------------------------------------------------
if [ ! -f "$IMAGE_TAR" ]; then
    # The Debian mirror apt uses (its first .../debian URI, deb822 or one-line format).
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
        sed -nE 's#^(URIs:|deb( \[[^]]*\])?)[[:space:]]+(https?://[^[:space:]]*/debian/?)([[:space:]].*)?$#\3#p' |
        head -1 || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    say "building $IMAGE once: debootstrap $DEBIAN_SUITE from $mirror, $AWSLAMBDARIC"
    rootfs=$WORK/rootfs
    rm -rf "$rootfs"
    mkdir -p "$rootfs"
    # In memory too: debootstrap writes ~8,000 small files.
    [ "${WALLET_INVOKE_TMPFS:-1}" = 1 ] && mount -t tmpfs -o size=2g,mode=0755 wallet-sam-rootfs "$rootfs"
    debootstrap --variant=minbase --include=python3,ca-certificates "$DEBIAN_SUITE" "$rootfs" "$mirror" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
    .venv/bin/python -m pip install -q --no-compile --disable-pip-version-check --target "$rootfs/var/runtime" \
        --only-binary=:all: --python-version 3.13 --implementation cp --abi cp313 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        "$AWSLAMBDARIC" 2>&1 | grep -v 'is ignored: it is neither' || true
    [ -d "$rootfs/var/runtime/awslambdaric" ] || { say "awslambdaric did not install"; exit 1; }
    printf '%s\n' "$BOOTSTRAP" >"$rootfs/var/runtime/bootstrap"
    chmod 755 "$rootfs/var/runtime/bootstrap"
    mkdir -p "$rootfs/var/task" "$rootfs/opt"
    rm -rf "$rootfs"/usr/share/{doc,man,info,locale}/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV LANG=C.UTF-8' --change 'ENV TZ=:/etc/localtime' \
        --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin' \
        --change 'ENV LAMBDA_TASK_ROOT=/var/task' --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
        --change 'WORKDIR /var/task' --change 'ENTRYPOINT ["/var/runtime/bootstrap"]' - "$IMAGE" >/dev/null
    rm -f "$WORK"/*.tar.part "$WORK"/"$(printf %s "$IMAGE" | tr '/:' '__')"-*.tar
    docker save "$IMAGE" -o "$IMAGE_TAR.part" && mv "$IMAGE_TAR.part" "$IMAGE_TAR"
    if mountpoint -q "$rootfs"; then umount "$rootfs"; fi
    rm -rf "$rootfs"
    phase "built $IMAGE, cached as $IMAGE_TAR ($(du -h "$IMAGE_TAR" | cut -f1))"
else
    docker load -q -i "$IMAGE_TAR" >/dev/null
    phase "loaded $IMAGE from $IMAGE_TAR"
fi

# --- 6. the x86_64 build (started in step 2, beside the network, dockerd and the image) ------------------------------
if ! wait "$SAM_BUILD_PID"; then
    SAM_BUILD_PID=
    tail -30 "$WORK/sam-build.log"; say "sam build failed (log: $WORK/sam-build.log)"; exit 1
fi
SAM_BUILD_PID=
say "sam build (x86_64) into $BUILD/build: done in $((SECONDS - SAM_BUILD_START))s, beside the above" \
    "(log $WORK/sam-build.log)"
# What the build ships is what counts: the layer carries its bytecode (else every cold start compiles it).
.venv/bin/python scripts/check_bytecode.py "$BUILD/build/WalletLayer/python" || { say "the x86_64 layer has no bytecode"; exit 1; }
# The archive layer too, and its duckdb built for the emulator's x86_64 (WALLET_LAYER_ARCH: layers/archive/Makefile).
.venv/bin/python scripts/check_bytecode.py "$BUILD/build/ArchiveLayer/python" ||
    { say "the x86_64 archive layer has no bytecode"; exit 1; }
duckdb_so=$(find "$BUILD/build/ArchiveLayer/python" -maxdepth 2 -name '_duckdb*.so' | head -n 1)
[ -n "$duckdb_so" ] && file -b "$duckdb_so" | grep -q 'x86-64' ||
    { say "the archive layer has no x86_64 duckdb: ${duckdb_so:-no _duckdb*.so} $(file -b "${duckdb_so:-/dev/null}")"; exit 1; }
PHASE_START=$SECONDS

# The exporter's event (chain "archive" of events/expected.json) needs its own section in events/env.json: the archive
# bucket on moto (WALLET_ARCHIVE_BUCKET, AWS_ENDPOINT_URL_S3). Without it SAM would give the function the template's
# values (a bucket in AWS, unreachable from here), so the chain is left out, loudly, and so is the ledger check that
# runs only with every chain.
CHAINS=()
if ! .venv/bin/python -c 'import json, sys; sys.exit("LedgerExportFunction" not in json.load(open("events/env.json")))'; then
    printf '\n#####################################################################################################\n'
    say "NOT RUN: the ledger exporter's event (chain archive): events/env.json has no LedgerExportFunction section"
    say "(WALLET_ARCHIVE_BUCKET on moto, AWS_ENDPOINT_URL_S3); the other chains run, without the final ledger rows."
    printf '#####################################################################################################\n\n'
    mapfile -t others < <(.venv/bin/python -c 'import json
chains = dict.fromkeys(e.get("chain", "main") for e in json.load(open("events/expected.json"))["replay"])
print("\n".join(c for c in chains if c != "archive"))')
    for chain in "${others[@]}"; do CHAINS+=(--chain "$chain"); done
fi

# --- 7. the events, the start-api round ----------------------------------------------------------------------------
# SAM's temporary files, and its lock files for the image it builds before every invoke (tempfile.gettempdir()), in a
# directory of this run: a lock left by a sam process that was stopped mid-build would hold the next run for 5 minutes.
rm -rf "$WORK/tmp" && mkdir -p "$WORK/tmp"
export TMPDIR=$PWD/$WORK/tmp
# In the background and waited for, so that a signal to this script reaches the trap at once.
.venv/bin/python -m wallet_local.invoke --template "$BUILD/build/template.yaml" --parameter-overrides "${OVERRIDES[*]}" \
    --services-netns "$SVC_NS" --services-ip "$SVC_IP" --logs "$WORK/logs" \
    --network-probe "$IMAGE" --host-ip "$NET.1" $([ $FIREWALLED = 1 ] || echo --host-reachable) "${CHAINS[@]}" "$@" &
PY_PID=$!
rc=0
wait "$PY_PID" || rc=$?
PY_PID=
say "make invoke: $([ $rc = 0 ] && echo ok || echo "FAILED (exit $rc)") in $((SECONDS - START))s"
exit $rc
