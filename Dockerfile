# syntax=docker/dockerfile:1
#
# Two images from one file (see docker-compose.yml):
#   --target api      `recsys serve` (the default, last stage): serving libraries only
#   --target trainer  `recsys db upgrade`, `recsys data ...`, `recsys train`: adds the
#                     training group (TFRS, tf-keras, baselines, optuna)
# Both share the serving-dependency layer, then the project (installed without
# resolving dependencies again), and run as the non-root user 10001.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- serving dependencies: a virtualenv with what `recsys serve` needs ---------------
FROM ${PYTHON_IMAGE} AS serving-deps

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so the large TensorFlow/ScaNN layer is
# rebuilt only when a dependency list changes, not on every code edit. GROUPS names the
# optional groups to add to the serving ones (none for the API image).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# ---- training dependencies: TFRS, tf-keras, the baselines' libraries, optuna ---------
FROM serving-deps AS training-deps
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['training']))" \
        > /tmp/training.txt \
    && pip install -r /tmp/training.txt

# ---- the project itself, on top of either (no dependency resolution: all is there) ----
FROM serving-deps AS serving-build
COPY app ./app
COPY models ./models
COPY training ./training
COPY migrations ./migrations
RUN pip install --no-deps .

FROM training-deps AS training-build
COPY --from=serving-build /src /src
RUN pip install --no-deps .

# ---- runtime base: a non-root user, no sources, build files or pip cache -------------
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

WORKDIR /app
# Numeric, so orchestrators can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000

# python, because the slim image has no curl; urlopen raises (exit 1) on any non-2xx.
# The start period covers importing TensorFlow and loading the model version.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["recsys", "serve", "--host", "0.0.0.0", "--port", "8000"]

# ---- trainer: `recsys db upgrade`, `recsys data ...`, `recsys train`, `recsys evaluate` -
FROM runtime AS trainer
COPY --from=training-build /opt/venv /opt/venv
HEALTHCHECK NONE
CMD ["recsys", "train"]

# ---- api (the default target): serving libraries only, no TFRS, tf-keras or baselines -
FROM runtime AS api
COPY --from=serving-build /opt/venv /opt/venv
