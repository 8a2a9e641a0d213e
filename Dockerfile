# lookalike bot: slim image, non-root, models from the pip package, assets/ and photos/ as volumes.
# Build:  docker build -t lookalike .
# Catalog: docker run --rm -v $PWD/photos:/app/photos:ro -v $PWD/assets:/app/assets lookalike \
#            sh -c "python build_embeddings.py && python build_index.py"
# Run (polling): docker run -d --restart=unless-stopped --stop-timeout 60 -e TELEGRAM_TOKEN=... \
#                  -v $PWD/assets:/app/assets -v lookalike-data:/app/data lookalike
# Run (webhook): add -e LOOKALIKE_WEBHOOK_URL=https://bot.example.com/telegram -e LOOKALIKE_LISTEN=0.0.0.0 -p 8443:8443
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    LOOKALIKE_ASSETS=/app/assets LOOKALIKE_PHOTOS=/app/photos LOOKALIKE_FEEDBACK_DB=/app/data/feedback.sqlite3 \
    LOOKALIKE_LOG_FORMAT=json

WORKDIR /app
COPY requirements.txt .
# dlib-bin and nmslib ship manylinux wheels: no compiler needed. libgomp is nmslib's OpenMP runtime.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/* \
    && grep -vE '^(pytest|ruff)==' requirements.txt > /tmp/runtime.txt \
    && pip install -r /tmp/runtime.txt

COPY lookalike/ lookalike/
COPY bot.py build_embeddings.py build_index.py ./

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
