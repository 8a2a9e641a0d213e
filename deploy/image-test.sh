#!/usr/bin/env bash
# Build the production image (Dockerfile) with podman and run it: dlib check, catalog, `match`, per-photo timing,
# and the bot against a fake Telegram Bot API on the host loopback until /healthz answers and a photo gets its card.
#
#   make image-test                                    # or deploy/image-test.sh; needs root, podman, runc, debootstrap
#   DLIB_WHEELS=/tmp/dlib-wheels make image-test       # reuse a dlib wheel built before (skips the ~20 min compile)
#
# No image registry is needed: the base is Debian bookworm made here by debootstrap (from Debian's mirror) and
# imported as $BASE_IMAGE, passed with --build-arg BASE; PyPI is the only other source. Set BASE_IMAGE to an
# existing image (e.g. docker.io/library/python:3.11-slim) to skip the debootstrap.
# Environment: FACES (photos for the catalog, default ../shared/faces), WORK (scratch, default /tmp/lookalike-image),
# IMAGE (tag to build), KEEP=1 (keep the image), PODMAN (the engine command).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FACES=$(realpath "${FACES:-../shared/faces}")
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
prun "$IMAGE" python -c "import dlib, os; print('dlib', dlib.__version__, 'BLAS', dlib.DLIB_USE_BLAS, \
'AVX', dlib.USE_AVX_INSTRUCTIONS, 'OPENBLAS_NUM_THREADS', os.environ.get('OPENBLAS_NUM_THREADS'), \
'OPENBLAS_CORETYPE', os.environ.get('OPENBLAS_CORETYPE'))"

step "catalog from $FACES, built inside the container"
ASSETS=$WORK/assets && rm -rf "$ASSETS" && mkdir -p "$ASSETS" && chown 10001 "$ASSETS"  # the image's user
pod run --rm "${RUN_FLAGS[@]}" -v "$FACES:/faces:ro" -v "$ASSETS:/app/assets" "$IMAGE" sh -c \
    "python build_embeddings.py --photos /faces --assets /app/assets --catalog-jitters 0 --quiet \
     && python build_index.py --assets /app/assets" 2>&1 | tail -4
ls "$ASSETS"

step "python -m lookalike match on a photo"
photo=$(find "$FACES" -mindepth 2 -name '*.jpg' | sort | sed -n 2p)
person=$(basename "$(dirname "$photo")")
out=$(prun -v "$FACES:/faces:ro" -v "$ASSETS:/app/assets:ro" "$IMAGE" \
    python -m lookalike match --assets /app/assets --json "/faces/${photo#"$FACES"/}")
echo "$out" | cut -c1-400
top1=$(echo "$out" | "$HOST_PY" -c "import json, sys; print(json.loads(sys.stdin.readline())['faces'][0]['matches'][0]['person'])")
[ "$top1" = "$person" ] || die "match named $top1, not $person, for $photo"
echo "top-1: $top1 (right)"

step "whole photo (decode → card) at 1280 px inside the container, median of 8 photos × 3"
prun -v "$FACES:/faces:ro" -v "$ASSETS:/app/assets:ro" -i "$IMAGE" python - <<'EOF'
import io, statistics, time
from pathlib import Path
from PIL import Image
from lookalike.engine.analysis import analyze_photo
from lookalike.engine.matcher import Matcher
from lookalike.engine.render import render_card

matcher = Matcher(Path("/app/assets"))
photos = []
for folder in sorted(Path("/faces").iterdir()):
    for path in sorted(folder.glob("*.jpg")):
        with Image.open(path) as im:
            if max(im.size) >= 1200:
                im = im.convert("RGB")
                s = 1280 / max(im.size)
                out = io.BytesIO()
                im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.LANCZOS).save(out, "JPEG", quality=87)
                photos.append(out.getvalue())
                break
    if len(photos) == 8:
        break

def whole(data):
    face = analyze_photo(data).faces[0]
    m = matcher.match(face.descriptor, 5)[0]
    render_card(face.crop_jpeg, m.thumb.read_bytes(), matcher.store.persons[m.person].name,
                matcher.calibration.similarity(m.distance))

whole(photos[0])
times = []
for _ in range(3):
    for data in photos:
        t = time.perf_counter()
        whole(data)
        times.append((time.perf_counter() - t) * 1000)
print(f"whole photo in the container: median {statistics.median(times):.1f} ms over {len(times)} runs "
      f"of {len(photos)} photos (min {min(times):.1f})")
EOF

step "bot.py against a fake Bot API on 127.0.0.1 (--network host)"
INFO=$WORK/fake-api.json && rm -f "$INFO" "$WORK/fake-api.stop"
"$HOST_PY" - "$INFO" "$METRICS_PORT" "$photo" >"$WORK/fake-api.log" 2>&1 <<'EOF' &
import json, sys, time, urllib.request
from pathlib import Path

info, port, photo = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
sys.path.insert(0, ".")
try:
    from testkit.fake_bot_api import FakeBotApi
except Exception as exc:  # the project's fake is missing or broken: say so and stop (no silent stand-in)
    sys.exit(f"testkit.fake_bot_api not importable: {exc!r}")

def healthz(deadline):
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return r.status, r.read().decode()[:200]
        except OSError:
            time.sleep(0.5)
    sys.exit("no /healthz within the deadline")

with FakeBotApi() as api:
    info.write_text(json.dumps({"base_url": api.base_url, "base_file_url": api.base_file_url, "token": api.token}))
    start = time.monotonic()
    status, body = healthz(start + 180)
    print(f"/healthz {status} after {time.monotonic() - start:.1f} s: {body}", flush=True)
    api.send_photo(42, photo.read_bytes())
    t = time.monotonic()
    [card] = api.wait_for_sent(chat_id=42, timeout=60, method="sendPhoto")
    print(f"photo → card (sendPhoto) in {time.monotonic() - t:.2f} s; caption: {card.params.get('caption')!r}")
    api.assert_no_internal_errors()
    print("PASSED", flush=True)
    stop = time.monotonic() + 120
    while not info.with_suffix(".stop").exists() and time.monotonic() < stop:  # serve until the bot has stopped
        time.sleep(0.2)
EOF
API_PID=$!
for _ in $(seq 100); do [ -s "$INFO" ] && break; sleep 0.2; done
[ -s "$INFO" ] || { cat "$WORK/fake-api.log"; die "fake Bot API did not start"; }
j() { "$HOST_PY" -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$INFO" "$1"; }
pod run -d --name "$NAME" "${RUN_FLAGS[@]}" --network host -v "$ASSETS:/app/assets:ro" \
    -e TELEGRAM_TOKEN="$(j token)" -e LOOKALIKE_BASE_URL="$(j base_url)" -e LOOKALIKE_BASE_FILE_URL="$(j base_file_url)" \
    -e LOOKALIKE_METRICS_PORT="$METRICS_PORT" -e LOOKALIKE_WORKERS=2 "$IMAGE" >/dev/null
while kill -0 "$API_PID" 2>/dev/null && ! grep -q '^PASSED' "$WORK/fake-api.log"; do sleep 0.5; done
cat "$WORK/fake-api.log"
if ! grep -q '^PASSED' "$WORK/fake-api.log"; then pod logs "$NAME" 2>&1 | tail -30; die "bot in the container"; fi
pod logs "$NAME" 2>&1 | tail -2 | cut -c1-300
pod stop -t 30 "$NAME" >/dev/null && echo "bot stopped on SIGTERM: exit $(pod inspect --format '{{.State.ExitCode}}' "$NAME")"
touch "${INFO%.json}.stop" && wait "$API_PID" && API_PID=

step "image-test passed in $((SECONDS - T0)) s (image $((size / 1000000)) MB)"
