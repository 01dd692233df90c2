# One image for every Dear MP service: `docker run IMAGE dearmp serve mailer`, and so on.
# docker-compose.yml picks the command for each service.

# --- build: the project and its dependencies as wheels (no compilers needed in the final image)
FROM python:3.11.10-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# README.md is the package's long description (pyproject `readme`), so the build needs it.
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY migrations ./migrations
# Runtime dependencies only: the [test] extra (pytest, testcontainers, ruff, mypy) is left out.
RUN pip wheel --wheel-dir /wheels .

# --- runtime
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEARMP_HTTP_HOST=0.0.0.0

RUN groupadd --system --gid 10001 dearmp \
 && useradd --system --uid 10001 --gid dearmp --home-dir /app --shell /usr/sbin/nologin dearmp

# weasyprint's system libraries and a font: the letter to post as a PDF (services/intake/printable.py).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

COPY --from=build /wheels /tmp/wheels
RUN pip install --no-index --find-links=/tmp/wheels dearmp \
 && rm -rf /tmp/wheels

WORKDIR /app
# Not Python packages, so not in the wheel: the example campaigns and the demo reference data,
# used by `dearmp campaigns load campaigns` and `dearmp data import-* data/demo/...`.
COPY campaigns ./campaigns
COPY data ./data

USER dearmp:dearmp

# 8000: intake (DEARMP_HTTP_PORT). 9100: workers' and relay's /healthz, /readyz, /metrics.
EXPOSE 8000 9100

# The entry point is the `dearmp` CLI installed from pyproject's [project.scripts]; with no
# command it lists the sub-commands. Compose runs e.g. `dearmp serve mailer`.
CMD ["dearmp", "--help"]
