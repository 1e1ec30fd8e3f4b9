# The code-location image: `dagster code-server` serving article_rec_assets.definitions.
FROM python:3.11-slim

# implicit needs the system OpenMP runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 dagster
WORKDIR /opt/article_rec_assets
ENV DAGSTER_HOME=/opt/dagster/home

COPY setup.py pyproject.toml README.md ./
COPY article_rec_assets ./article_rec_assets
# EXTRAS: e.g. "[k8s]" for the Kubernetes run launcher. PIP_NO_INDEX / PIP_FIND_LINKS: an offline
# build from a wheelhouse (deploy/build-image.sh sets them); unset, pip uses the package index.
ARG EXTRAS=""
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
RUN pip install --no-cache-dir ".${EXTRAS}" && pip check
COPY workspace.yaml ./
# The production instance: storage in PostgreSQL, settings from DAGSTER_PG_* at run time.
COPY deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml
RUN chown -R dagster $DAGSTER_HOME

# One BLAS thread: implicit parallelises itself and OpenBLAS threads would fight it.
ENV OPENBLAS_NUM_THREADS=1 \
    PYTHONUNBUFFERED=1
USER dagster
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "article_rec_assets.definitions"]
