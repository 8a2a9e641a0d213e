#!/usr/bin/env bash
# Build the production image (Dockerfile) with podman and run it as an operator would: with nothing mounted (the
# shipped default catalog: `match`, and the bot answering a selfie), then with a catalog of one's own built inside the
# container (`match`, the bot), and the per-photo timing. The bot runs against a fake Telegram Bot API on the host
# loopback (python -m testkit.smoke, the same check tests/test_smoke.py runs in CI) until /healthz answers and a
# photo gets its card naming the right person.
#
#   make image-test                                    # or deploy/image-test.sh; needs root, podman, runc, debootstrap
#   DLIB_WHEELS=/tmp/dlib-wheels make image-test       # reuse a dlib wheel built before (skips the ~20 min compile)
#
# No image registry is needed: the base is Debian bookworm made here by debootstrap (from Debian's mirror) and
# imported as $BASE_IMAGE, passed with --build-arg BASE; PyPI is the only other source. Set BASE_IMAGE to an
# existing image (e.g. docker.io/library/python:3.11-slim) to skip the debootstrap.
# Environment: FACES (photos for the catalog, default ../shared/faces), SHARED (../shared, for the timing),
# WORK (scratch, default /tmp/lookalike-image),
# IMAGE (tag to build), KEEP=1 (keep the image), PODMAN (the engine command).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FACES=$(realpath "${FACES:-../shared/faces}")
SHARED=$(realpath "${SHARED:-../shared}")
WORK=${WORK:-/tmp/lookalike-image}
IMAGE=${IMAGE:-localhost/lookalike:image-test}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian-python:bookworm}
PODMAN=${PODMAN:-podman}
HOST_PY=${HOST_PY:-$ROOT/.venv/bin/python}
NAME=lookalike-image-test-$$
METRICS_PORT=${METRICS_PORT:-18093}
T0=$SECONDS
step() { printf '\n== [%3ds] %s\n' $((SECONDS - T0)) "$*"; }
die() { echo "image-test: FAILED: $*" >&2; exit 1; }
mkdir -p "$WORK"
[ -d "$FACES" ] || die "no photos at $FACES (set FACES)"

# --- podman flags that work on this machine. In a sandbox (a VM without systemd, cgroup v1 + an empty v2 "hybrid"
# hierarchy, RLIMIT_NOFILE capped at the current hard limit) plain `podman run` fails with crun's
# "setrlimit RLIMIT_NOFILE: Operation not permitted" and then "cgroups in hybrid mode not supported": runc copes
# with the cgroups, and the rlimits must not exceed ours.
RUN_FLAGS=() GLOBAL=()
probe() { "$PODMAN" "${GLOBAL[@]}" run --rm "${RUN_FLAGS[@]}" "$1" true 2>"$WORK/probe.err"; }
ensure_base() {
    if "$PODMAN" image exists "$BASE_IMAGE"; then return; fi
    [[ $BASE_IMAGE == localhost/* ]] || { "$PODMAN" pull "$BASE_IMAGE"; return; }
    step "base image: debootstrap Debian bookworm (minbase + python3, python3-venv) → $BASE_IMAGE"
    command -v debootstrap >/dev/null || die "apt-get install debootstrap"
    local rootfs=$WORK/rootfs
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" \
        http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 || { tail "$WORK/debootstrap.log"; die debootstrap; }
    cat >"$rootfs/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
    tar -C "$rootfs" -c . | "$PODMAN" import --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
}
ensure_base
if ! probe "$BASE_IMAGE"; then
    echo "plain '$PODMAN run' fails here: $(tail -1 "$WORK/probe.err")"
    hard=$(ulimit -Hn) ok=
    GLOBAL=(--runtime runc)
    for procs in $(ulimit -Hu) 65536 32768 16384 4096; do  # the highest NPROC runc may set (not always the hard one)
        [ "$procs" = unlimited ] && continue
        RUN_FLAGS=(--ulimit "nofile=$hard:$hard" --ulimit "nproc=$procs:$procs")
        if probe "$BASE_IMAGE"; then ok=1; break; fi
    done
    [ -n "$ok" ] || die "podman cannot run containers here: $(cat "$WORK/probe.err")"
    echo "using: $PODMAN ${GLOBAL[*]} run ${RUN_FLAGS[*]}"
fi
pod() { "$PODMAN" "${GLOBAL[@]}" "$@"; }
prun() { pod run --rm "${RUN_FLAGS[@]}" "$@"; }

# --- build
BUILD_ARGS=(--build-arg "BASE=$BASE_IMAGE")
# Behind a TLS-intercepting proxy (this sandbox) pip needs the host's CA bundle: mounted for the build, not kept.
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
    BUILD_ARGS+=(-v "$PIP_CERT:/etc/ssl/host-ca.crt:ro" --build-arg PIP_CERT=/etc/ssl/host-ca.crt)
fi
if [ -n "${DLIB_WHEELS:-}" ]; then
    wheel=$(ls "$DLIB_WHEELS"/dlib-*-cp311-*.whl 2>/dev/null | head -1)
    [ -n "$wheel" ] || die "no dlib-*-cp311-*.whl in $DLIB_WHEELS"
    # The Dockerfile's "dlib" stage, replaced by a folder: wheels/ with the wheel and the Debian packages of the
    # libraries its module links (what the stage itself would have written).
    ctx=$WORK/dlib-stage && rm -rf "$ctx" && mkdir -p "$ctx/wheels" "$ctx/so"
    cp "$wheel" "$ctx/wheels/"
    "$HOST_PY" -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
[z.extract(n, sys.argv[2]) for n in z.namelist() if n.endswith('.so')]" "$wheel" "$ctx/so"
    ldd "$ctx"/so/_dlib_pybind11*.so | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r lib; do
        real=$(realpath "$lib"); dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || dpkg -S "$lib"
    done | cut -d: -f1 | sort -u >"$ctx/wheels/runtime-debs.txt"
    rm -rf "$ctx/so"
    BUILD_ARGS+=(--build-context "dlib=$ctx")
    step "build $IMAGE from $BASE_IMAGE with the prebuilt $(basename "$wheel") (links: $(tr '\n' ' ' <"$ctx/wheels/runtime-debs.txt"))"
else
    step "build $IMAGE from $BASE_IMAGE, compiling dlib in the builder stage (~20 min on 2 cores)"
fi
nice -n 10 "$PODMAN" "${GLOBAL[@]}" build "${RUN_FLAGS[@]}" "${BUILD_ARGS[@]}" -t "$IMAGE" -f Dockerfile . \
    >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; die "image build (log: $WORK/build.log)"; }
grep -E "dlib .* BLAS on|dlib links" "$WORK/build.log" || true
size=$(pod image inspect --format '{{.Size}}' "$IMAGE")
echo "image $IMAGE: $((size / 1000000)) MB ($(pod image inspect --format '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%d", $1/1e6}') MB of it the base)"

cleanup() {
    pod rm -f "$NAME" >/dev/null 2>&1 || true
    [ -n "${API_PID:-}" ] && kill "$API_PID" 2>/dev/null || true
    [ "${KEEP:-0}" = 1 ] || pod rmi -f "$IMAGE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "dlib in the image"
prun "$IMAGE" python -c "import os; from lookalike.engine.dlib_runtime import dlib; \
print('dlib', dlib.__version__, 'BLAS', dlib.DLIB_USE_BLAS, \
'AVX', dlib.USE_AVX_INSTRUCTIONS, 'OPENBLAS_NUM_THREADS', os.environ.get('OPENBLAS_NUM_THREADS'), \
'OPENBLAS_CORETYPE', os.environ.get('OPENBLAS_CORETYPE'))"

step "nothing mounted: match against the shipped default catalog"
member=$FACES/biden/2.jpg  # a member of Congress, in the default catalog as Joseph Biden Jr.
[ -f "$member" ] || die "no $member"
out=$(prun -v "$FACES:/faces:ro" "$IMAGE" python -m lookalike match --json /faces/biden/2.jpg)
echo "$out" | cut -c1-300
named=$(echo "$out" | "$HOST_PY" -c "import json, sys; print(json.loads(sys.stdin.readline())['faces'][0]['matches'][0]['name'])")
[ "$named" = "Joseph Biden Jr." ] || die "the default catalog named $named, not Joseph Biden Jr."

# The bot in the container against the fake Bot API on the host (--network host), checked by testkit.smoke.
bot_check() {  # bot_check PHOTO EXPECTED-NAME [podman run flags...]
    local photo=$1 expect=$2 info=$WORK/fake-api.json
    shift 2
    rm -f "$info" "${info%.json}.stop"
    "$HOST_PY" -m testkit.smoke --info "$info" --metrics-port "$METRICS_PORT" --photo "$photo" --expect "$expect" \
        >"$WORK/fake-api.log" 2>&1 &
    API_PID=$!
    for _ in $(seq 100); do [ -s "$info" ] && break; sleep 0.2; done
    [ -s "$info" ] || { cat "$WORK/fake-api.log"; die "fake Bot API did not start"; }
    j() { "$HOST_PY" -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$info" "$1"; }
    pod run -d --name "$NAME" "${RUN_FLAGS[@]}" --network host "$@" \
        -e TELEGRAM_TOKEN="$(j token)" -e LOOKALIKE_BASE_URL="$(j base_url)" \
        -e LOOKALIKE_BASE_FILE_URL="$(j base_file_url)" -e LOOKALIKE_METRICS_PORT="$METRICS_PORT" \
        -e LOOKALIKE_WORKERS=2 "$IMAGE" >/dev/null
    while kill -0 "$API_PID" 2>/dev/null && ! grep -q '^PASSED' "$WORK/fake-api.log"; do sleep 0.5; done
    cat "$WORK/fake-api.log"
    if ! grep -q '^PASSED' "$WORK/fake-api.log"; then pod logs "$NAME" 2>&1 | tail -30; die "bot in the container"; fi
    pod logs "$NAME" 2>&1 | sed -n 1,3p | cut -c1-300
    pod stop -t 30 "$NAME" >/dev/null && echo "bot stopped on SIGTERM: exit $(pod inspect --format '{{.State.ExitCode}}' "$NAME")"
    pod rm -f "$NAME" >/dev/null
    touch "${info%.json}.stop" && wait "$API_PID" && API_PID=
}

step "nothing mounted: bot.py serves the default catalog at once and answers a selfie"
bot_check "$member" "Joseph Biden Jr."

step "catalog from $FACES, built inside the container"
ASSETS=$WORK/assets && rm -rf "$ASSETS" && mkdir -p "$ASSETS" && chown 10001 "$ASSETS"  # the image's user
pod run --rm "${RUN_FLAGS[@]}" -v "$FACES:/faces:ro" -v "$ASSETS:/app/assets" "$IMAGE" sh -c \
    "python build_embeddings.py --photos /faces --assets /app/assets --catalog-jitters 0 --quiet \
     && python build_index.py --assets /app/assets" 2>&1 | tail -4
ls "$ASSETS"

step "python -m lookalike match on a photo, with the catalog mounted"
photo=$(find "$FACES" -mindepth 2 -name '*.jpg' | sort | sed -n 2p)
person=$(basename "$(dirname "$photo")")
out=$(prun -v "$FACES:/faces:ro" -v "$ASSETS:/app/assets:ro" "$IMAGE" \
    python -m lookalike match --assets /app/assets --json "/faces/${photo#"$FACES"/}")
echo "$out" | cut -c1-400
top1=$(echo "$out" | "$HOST_PY" -c "import json, sys; print(json.loads(sys.stdin.readline())['faces'][0]['matches'][0]['person'])")
[ "$top1" = "$person" ] || die "match named $top1, not $person, for $photo"
echo "top-1: $top1 (right)"

step "the mounted assets win over the default catalog: bot.py answers from them"
name=$(echo "$out" | "$HOST_PY" -c "import json, sys; print(json.loads(sys.stdin.readline())['faces'][0]['matches'][0]['name'])")
bot_check "$photo" "$name" -v "$ASSETS:/app/assets:ro"

step "per photo inside the container: our pipeline against the article's (bench/pipeline.py --quick)"
prun -v "$ROOT/bench:/app/bench:ro" -v "$ROOT/testkit:/app/testkit:ro" -v "$SHARED:/shared:ro" \
    -e LOOKALIKE_SHARED=/shared -e MPLCONFIGDIR=/tmp "$IMAGE" python -m bench.pipeline --quick 2>&1

step "image-test passed in $((SECONDS - T0)) s (image $((size / 1000000)) MB)"
