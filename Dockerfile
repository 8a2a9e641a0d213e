# lookalike bot: slim image, non-root, models from the pip package, assets/ and photos/ as volumes.
#
# dlib is compiled in a builder stage against OpenBLAS with AVX2/FMA code (x86-64-v3): per photo ~2.2× faster than
# the dlib-bin wheel of `make setup` (bench/RESULTS.md, "dlib builds"). The runtime stage gets only that wheel and
# the shared libraries it links (OpenBLAS, libpng, libjpeg), no compiler.
#
# Build:  docker build -t lookalike .          # or podman build; ~20 min on 2 cores (dlib is compiled once)
#   --build-arg DLIB_MARCH=x86-64-v2            for CPUs without AVX2 (Intel before 2013, AMD before 2015)
#   --build-arg BASE=...                        any Debian-based image with python3 and its venv module; the default is
#                                               the official python:3.11-slim (deploy/image-test.sh uses a local
#                                               debootstrap of Debian bookworm when no registry is reachable)
#   --build-arg PIP_CERT=/path -v host-ca.pem:/path:ro
#                                               behind a TLS-intercepting proxy: its CA for pip (podman; not kept)
#   --build-context dlib=DIR                    skip the compile: reuse a dlib wheel built before on the same
#                                               distribution (DIR/wheels/ holds dlib-*.whl and runtime-debs.txt, the
#                                               Debian packages of the libraries it links); tested with podman 4.3
# Try it:  docker run -d -e TELEGRAM_TOKEN=... lookalike       # nothing mounted: the shipped default catalog
# Catalog: docker run --rm -v $PWD/photos:/app/photos:ro -v $PWD/assets:/app/assets lookalike \
#            sh -c "python build_embeddings.py && python build_index.py"
# Run (polling): docker run -d --restart=unless-stopped --stop-timeout 60 -e TELEGRAM_TOKEN=... \
#                  -v $PWD/assets:/app/assets -v lookalike-data:/app/data lookalike
# Run (webhook): add -e LOOKALIKE_WEBHOOK_URL=https://bot.example.com/telegram -e LOOKALIKE_LISTEN=0.0.0.0 -p 8443:8443
# Smoke test of the whole image (build, catalog, match, bot against a fake Bot API): make image-test.
ARG BASE=python:3.11-slim

# --- dlib compiled here: BLAS + LAPACK from Debian's OpenBLAS, -O3 and a portable instruction-set baseline.
FROM ${BASE} AS dlib
ARG DLIB_VERSION=20.0.1
ARG DLIB_MARCH=x86-64-v3
ARG PIP_CERT
# python3-dev only where the base lacks Python.h (python:3.11-slim has it; Debian's python3 does not).
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
        libopenblas-dev liblapack-dev libpng-dev libjpeg-dev \
    && { python3 -c "import os, sys, sysconfig; sys.exit(not os.path.exists(sysconfig.get_path('include') + '/Python.h'))" \
         || apt-get install -y --no-install-recommends python3-dev; } \
    && rm -rf /var/lib/apt/lists/*
# Only DLIB_* variables reach dlib's CMake (setup.py); CFLAGS/CXXFLAGS are read by CMake itself. --no-binary dlib,
# not :all: (that would compile cmake and setuptools from source too).
RUN python3 -m venv /opt/build && /opt/build/bin/pip install --no-cache-dir --quiet --upgrade pip \
    && CFLAGS="-O3 -march=${DLIB_MARCH}" CXXFLAGS="-O3 -march=${DLIB_MARCH}" \
       DLIB_USE_BLAS=ON DLIB_USE_LAPACK=ON DLIB_USE_CUDA=OFF DLIB_NO_GUI_SUPPORT=ON \
       CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
       /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-binary dlib dlib==${DLIB_VERSION} --wheel-dir /wheels \
    && /opt/build/bin/pip install --no-cache-dir --no-deps /wheels/dlib-*.whl \
    && /opt/build/bin/python -c "import dlib; assert dlib.DLIB_USE_BLAS, 'dlib built without BLAS'" \
    && so=$(/opt/build/bin/python -c "import _dlib_pybind11; print(_dlib_pybind11.__file__)") \
    && ldd "$so" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r lib; do \
         real=$(realpath "$lib"); dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || dpkg -S "$lib"; \
       done | cut -d: -f1 | sort -u > /wheels/runtime-debs.txt \
    && echo "dlib links: $(tr '\n' ' ' < /wheels/runtime-debs.txt)"

# --- the runtime image
FROM ${BASE}
# OpenBLAS's kernels and threads: lookalike/engine/dlib_runtime.py sets them just before dlib loads, in every process
# (bot workers, builds, Dask workers, the CLI), as it does outside the image: one BLAS thread per process, and the
# kernels for the CPU, since Debian bookworm's OpenBLAS 0.3.21 falls back to its slowest ones on CPUs newer than
# itself. Set OPENBLAS_CORETYPE / OPENBLAS_NUM_THREADS with -e to override.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    LOOKALIKE_FEEDBACK_DB=/app/data/feedback.sqlite3 LOOKALIKE_LOG_FORMAT=json

WORKDIR /app
# The runtime requirements are requirements.txt above "# Development", without dlib-bin (dlib comes next).
ARG PIP_CERT
COPY requirements.txt .
RUN python3 -m venv /opt/venv \
    && sed '/^# Development/,$d' requirements.txt | grep -vE '^dlib-bin==' > /tmp/runtime.txt \
    && pip install --quiet -r /tmp/runtime.txt && rm /tmp/runtime.txt
# The dlib wheel and the Debian packages of the libraries it links (OpenBLAS, ...); libgomp1 is nmslib's OpenMP.
COPY --from=dlib /wheels /tmp/wheels
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
       $(grep -vE '^(libc6|libgcc-s1|libstdc\+\+6)$' /tmp/wheels/runtime-debs.txt) \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && pip install --quiet --no-deps /tmp/wheels/dlib-*.whl && rm -rf /tmp/wheels \
    && python -c "import dlib; assert dlib.DLIB_USE_BLAS, 'dlib without BLAS'; print('dlib', dlib.__version__, 'BLAS on')"

# The package, installed editable where it stands, so that /app is the project root as in a clone: photos/ and
# assets/ are the defaults (relative to WORKDIR), and the shipped default catalog sits in /app/catalogs/.
COPY pyproject.toml bot.py build_embeddings.py build_index.py ./
COPY lookalike/ lookalike/
COPY catalogs/ catalogs/
RUN pip install --quiet --no-deps --editable . \
    && python build_embeddings.py --quiet && python build_index.py >/dev/null
# With nothing mounted (empty photos/ and assets/ volumes) the bot serves the default catalog built just above, at
# once; a volume with your own photos or built assets wins, as in a clone (lookalike/settings.py).

RUN useradd --system --uid 10001 --home /app lookalike && mkdir -p /app/assets /app/photos /app/data \
    && chown -R lookalike /app/assets /app/data
USER lookalike
VOLUME ["/app/assets", "/app/photos", "/app/data"]
EXPOSE 8443

HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import os,urllib.request; \
p=os.environ.get('LOOKALIKE_PORT') if os.environ.get('LOOKALIKE_WEBHOOK_URL') else os.environ.get('LOOKALIKE_METRICS_PORT'); \
p and urllib.request.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4)"

STOPSIGNAL SIGTERM
CMD ["python", "bot.py"]
