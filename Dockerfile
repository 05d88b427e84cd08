# syntax=docker/dockerfile:1
#
# One image for every step of the stack: `recsys db upgrade`, `recsys data ...`,
# `recsys train` and (the default) `recsys serve`. See docker-compose.yml.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a virtualenv holding the project and its dependencies -------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so the large TensorFlow/ScaNN layer is
# rebuilt only when the dependency list changes, not on every code edit.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY app ./app
COPY models ./models
COPY training ./training
COPY migrations ./migrations
RUN pip install .

# ---- runtime: the virtualenv only, no sources, build files or pip cache --------------
FROM ${PYTHON_IMAGE} AS runtime

# TF_USE_LEGACY_KERAS: TFRS needs tf-keras (Keras 2); without it TensorFlow picks Keras 3.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    RECSYS_ARTIFACTS_DIR=/artifacts

# /artifacts exists in the image owned by the app user because Docker initialises an
# empty named volume from the image folder it is mounted on, ownership included:
# that is what lets the non-root train job write to the shared `artifacts` volume.
# /app is the working directory, where `recsys data fetch` downloads to (./var/data).
RUN groupadd --system --gid 10001 recsys \
    && useradd --system --uid 10001 --gid recsys --create-home --home-dir /home/recsys \
        --shell /usr/sbin/nologin recsys \
    && mkdir -p /app /artifacts \
    && chown recsys:recsys /app /artifacts

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# Numeric, so orchestrators can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000

# python, because the slim image has no curl; urlopen raises (exit 1) on any non-2xx.
# The start period covers importing TensorFlow and loading the model version.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["recsys", "serve", "--host", "0.0.0.0", "--port", "8000"]
