# Everything a newcomer needs: `make bot TELEGRAM_TOKEN=...` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PHOTOS ?= photos
ASSETS ?= assets

.PHONY: setup catalog bot test lint bench bench-quick dlib-fast image-test

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --editable .
	touch $@

catalog: setup
	$(BIN)/python build_embeddings.py --photos $(PHOTOS) --assets $(ASSETS)
	$(BIN)/python build_index.py --assets $(ASSETS)

bot: catalog
	$(BIN)/python bot.py --assets $(ASSETS)

test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .

# Benchmarks (bench/README.md): all figures of bench/RESULTS.md and its plots, regenerated in one run.
bench: setup
	$(BIN)/python -m bench.run

bench-quick: setup
	$(BIN)/python -m bench.run --quick

# Optional: replace dlib-bin with dlib compiled here as the Docker image does: against OpenBLAS, -O3, AVX2/FMA code
# (x86-64-v3). Per photo ~2.2x faster than dlib-bin (bench/RESULTS.md, "dlib builds"); ~20-40 min on 2 cores.
# Needs `apt-get install build-essential cmake pkg-config libopenblas-dev liblapack-dev libpng-dev libjpeg-dev`.
# DLIB_MARCH=x86-64-v2 for CPUs without AVX2. A wheel already in DLIB_WHEELS is reused (delete it to rebuild).
# Nothing to export: lookalike/engine/dlib_runtime.py picks OpenBLAS's kernels and one thread before dlib loads.
# A separate venv: `make dlib-fast VENV=/tmp/venv-fast`. Undo: `.venv/bin/pip uninstall -y dlib && .venv/bin/pip install dlib-bin==20.0.1.post1`.
DLIB_VERSION ?= 20.0.1
DLIB_MARCH ?= x86-64-v3
DLIB_WHEELS ?= $(VENV)/dlib-fast
dlib-fast: setup
	@test -e /usr/lib/x86_64-linux-gnu/libopenblas.so || test -e /usr/lib/libopenblas.so || \
		{ echo "libopenblas not found: apt-get install libopenblas-dev liblapack-dev cmake build-essential"; exit 1; }
	ls $(DLIB_WHEELS)/dlib-$(DLIB_VERSION)-*.whl 2>/dev/null || \
		CFLAGS="-O3 -march=$(DLIB_MARCH)" CXXFLAGS="-O3 -march=$(DLIB_MARCH)" \
		DLIB_USE_BLAS=ON DLIB_USE_LAPACK=ON DLIB_USE_CUDA=OFF DLIB_NO_GUI_SUPPORT=ON CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		nice -n 10 $(BIN)/pip wheel --no-deps --no-binary dlib dlib==$(DLIB_VERSION) --wheel-dir $(DLIB_WHEELS)
	$(BIN)/pip uninstall --yes dlib-bin
	$(BIN)/pip install --force-reinstall --no-deps --no-index --find-links $(DLIB_WHEELS) dlib==$(DLIB_VERSION)
	$(BIN)/python -c "import dlib; assert dlib.DLIB_USE_BLAS, 'built without BLAS'; print('dlib', dlib.__version__, 'BLAS on')"

# Build the Docker image with podman from a local Debian base and run it: catalog, match, bot against a fake Bot API
# (deploy/image-test.sh; ~25-40 min with the dlib compile, a few minutes with DLIB_WHEELS=dir-with-a-built-wheel).
image-test: setup
	deploy/image-test.sh
