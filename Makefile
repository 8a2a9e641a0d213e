# Everything a newcomer needs: `make bot TELEGRAM_TOKEN=...` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PHOTOS ?= photos
ASSETS ?= assets

.PHONY: setup catalog bot test lint bench bench-quick dlib-openblas

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

catalog: setup
	$(BIN)/python build_embeddings.py --photos $(PHOTOS) --assets $(ASSETS)
	$(BIN)/python build_index.py --assets $(ASSETS)

bot: catalog
	$(BIN)/python bot.py --assets $(ASSETS)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

# Benchmarks (bench/README.md): all figures of bench/RESULTS.md and its plots, regenerated in one run.
bench: setup
	$(BIN)/python bench/run.py

bench-quick: setup
	$(BIN)/python bench/run.py --quick

# Optional: replace dlib-bin with dlib compiled here against OpenBLAS (~15 min on 2 cores; figures and
# trade-offs in bench/RESULTS.md). Needs `apt-get install libopenblas-dev cmake build-essential python3-dev`.
# Undo: `.venv/bin/pip uninstall -y dlib && .venv/bin/pip install dlib-bin==20.0.1.post1`.
DLIB_VERSION ?= 20.0.1
dlib-openblas: setup
	@test -e /usr/lib/x86_64-linux-gnu/libopenblas.so || test -e /usr/lib/libopenblas.so || \
		{ echo "libopenblas not found: apt-get install libopenblas-dev cmake build-essential"; exit 1; }
	DLIB_USE_BLAS=ON DLIB_USE_LAPACK=ON DLIB_USE_CUDA=OFF CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(BIN)/pip wheel --no-deps --no-binary dlib dlib==$(DLIB_VERSION) --wheel-dir $(VENV)/dlib-openblas
	$(BIN)/pip uninstall --yes dlib-bin
	$(BIN)/pip install --no-index --find-links $(VENV)/dlib-openblas dlib==$(DLIB_VERSION)
	$(BIN)/python -c "import dlib; assert dlib.DLIB_USE_BLAS, 'built without BLAS'; print('dlib', dlib.__version__, 'BLAS on')"
