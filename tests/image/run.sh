#!/usr/bin/env bash
# `make image-test`: build the Docker image and run it against the simulators (tests/image/).
#
# Uses the Docker engine that answers `docker info`; otherwise, as root, starts one for the run
# (Debian's docker.io: no bridge, no iptables, so every build and container uses the host's
# network) and stops it at the end. The engine's data (images, build cache) is kept in
# $BOT_IMAGE_TEST_CACHE (default .image-test-cache/, git-ignored), so a second run reuses the
# base images and the build cache. Docker Hub is not needed: the base images are made locally
# from Debian's packages (debootstrap).
#
# Without Docker and without root this says why and exits 0, unless BOT_TEST_DOCKER=1 (CI).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
CACHE=${BOT_IMAGE_TEST_CACHE:-$REPO/.image-test-cache}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
IMAGE=${BOT_TEST_IMAGE:-connect-bot:image-test}
export BOT_TEST_IMAGE=$IMAGE BOT_TEST_BASE_IMAGE=local/debian:bookworm
started=$SECONDS

say() { printf 'image-test: %s\n' "$*" >&2; }

unavailable() {
    if [[ "${BOT_TEST_DOCKER:-}" == 1 ]]; then
        say "FAIL: $* (BOT_TEST_DOCKER=1 requires the image test)"
        exit 1
    fi
    say "skipped: $* (set BOT_TEST_DOCKER=1 to make this an error)"
    exit 0
}

# Run a command, showing its output only if it fails.
quiet() {
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" >&2
        say "FAIL: $*"
        return 1
    fi
}

W=""
cleanup() {
    local code=$?
    if [[ -n "$W" ]]; then
        if [[ -f "$W/dockerd.pid" ]]; then
            local pid
            pid=$(cat "$W/dockerd.pid")
            say "stopping the engine (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
        fi
        umount "$W/exec/netns/default" 2>/dev/null || true
        umount -R "$W/rootfs/proc" "$W/rootfs/sys" 2>/dev/null || true
        rm -rf "$W"
    fi
    say "total $((SECONDS - started)) s"
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- an engine
if docker info >/dev/null 2>&1; then
    say "using the running Docker engine"
else
    [[ $(id -u) == 0 ]] || unavailable "no Docker engine answers and this is not root"
    if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null \
        || ! command -v debootstrap >/dev/null; then
        # CI (BOT_TEST_DOCKER=1, root, a fresh machine) installs them; elsewhere, ask.
        [[ "${BOT_TEST_DOCKER:-}" == 1 ]] && command -v apt-get >/dev/null \
            || unavailable "no dockerd or debootstrap (apt-get install docker.io debootstrap)"
        say "apt-get install docker.io debootstrap"
        quiet apt-get update -q
        DEBIAN_FRONTEND=noninteractive quiet apt-get install -y -q docker.io debootstrap
    fi
    mkdir -p "$CACHE/engine"
    # A short path: the engine's sockets live under the exec root.
    W=$(mktemp -d /tmp/connect-bot-docker.XXXXXX)
    export DOCKER_HOST="unix://$W/docker.sock"
    dockerd --host "$DOCKER_HOST" --iptables=false --ip6tables=false --bridge=none \
        --storage-driver=overlay2 --data-root="$CACHE/engine" --exec-root="$W/exec" \
        --pidfile="$W/dockerd.pid" >"$W/dockerd.log" 2>&1 &
    for _ in $(seq 1 300); do
        docker info >/dev/null 2>&1 && break
        if ! kill -0 $! 2>/dev/null; then cat "$W/dockerd.log" >&2; unavailable "dockerd did not start"; fi
        sleep 0.1
    done
    docker info >/dev/null 2>&1 || { tail -20 "$W/dockerd.log" >&2; say "FAIL: dockerd did not answer"; exit 1; }
    say "started dockerd (pid $(cat "$W/dockerd.pid")); data in $CACHE/engine"
fi
# Containers and volumes a killed earlier run left behind.
leftovers=$(docker ps -aq --filter label=connect-bot-image-test)
[[ -z "$leftovers" ]] || docker rm -f $leftovers >/dev/null
leftovers=$(docker volume ls -q --filter label=connect-bot-image-test)
[[ -z "$leftovers" ]] || docker volume rm -f $leftovers >/dev/null

# ---- base images, made from Debian's packages
if ! docker image inspect local/debian:bookworm >/dev/null 2>&1; then
    [[ $(id -u) == 0 ]] || unavailable "no local/debian:bookworm image, and debootstrap needs root"
    command -v debootstrap >/dev/null || unavailable "no debootstrap (apt-get install debootstrap)"
    t=$SECONDS
    W=${W:-$(mktemp -d /tmp/connect-bot-docker.XXXXXX)}
    say "debootstrap bookworm (minbase)"
    debootstrap --variant=minbase bookworm "$W/rootfs" >"$W/debootstrap.log" 2>&1 \
        || { tail -20 "$W/debootstrap.log" >&2; exit 1; }
    : >"$W/rootfs/etc/resolv.conf"
    tar -C "$W/rootfs" --numeric-owner -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - local/debian:bookworm >/dev/null
    rm -rf "$W/rootfs"
    say "local/debian:bookworm made in $((SECONDS - t)) s"
fi

# The test's Python base image. It trusts the host's extra CA certificates (a TLS-inspecting
# proxy on the way to PyPI): this image only, never the product's Dockerfile.
base=$(mktemp -d /tmp/connect-bot-base.XXXXXX)
mkdir "$base/certs"
cp /usr/local/share/ca-certificates/*.crt "$base/certs/" 2>/dev/null || true
cp tests/image/python.Dockerfile "$base/Dockerfile"
t=$SECONDS
quiet docker build --network host -t local/python:3.11 "$base"
rm -rf "$base"
say "local/python:3.11 ready in $((SECONDS - t)) s"
t=$SECONDS
quiet docker build --network host -t local/postgres:15 -f tests/image/postgres.Dockerfile \
    tests/image
say "local/postgres:15 ready in $((SECONDS - t)) s"

t=$SECONDS
quiet docker build --network host --build-arg PYTHON_IMAGE=local/python:3.11 -t "$IMAGE" .
build=$((SECONDS - t))
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
say "built $IMAGE in $build s: $((size / 1000000)) MB"

# ---- the tests
[[ -x "$PYTHON" ]] || { say "FAIL: no $PYTHON (make .venv/bin/connect-bot)"; exit 1; }
export BOT_IMAGE_TEST_REPORT
BOT_IMAGE_TEST_REPORT=$(mktemp /tmp/connect-bot-image-report.XXXXXX)
code=0
"$PYTHON" -m pytest -q -p no:cacheprovider -o timeout=300 tests/image/scenarios.py "$@" || code=$?
echo "image built in $build s ($((size / 1000000)) MB)" >>"$BOT_IMAGE_TEST_REPORT"
# Earlier builds' images, now untagged: the cache would otherwise grow with every change.
docker image prune -f >/dev/null || true
sed 's/^/image-test: /' "$BOT_IMAGE_TEST_REPORT" >&2
rm -f "$BOT_IMAGE_TEST_REPORT"
exit "$code"
