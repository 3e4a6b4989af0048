# The seedgrid worker: the tested torch (its CUDA build) with seedgrid[worker] on top, every
# other package at the version CI tests (constraints.txt).
#
# torch 2.13.0's default Linux wheels are built for CUDA 13.0 and bring the CUDA libraries as
# nvidia-* wheels, so the base image only needs the CUDA "base" flavour (driver hooks, no
# toolkit); CUDA 13.0 needs an NVIDIA driver 580 or newer. For an older driver, build with
# TORCH_INDEX_URL set to PyTorch's index of a CUDA 12.x build of the same torch version (its
# 2.13.0+cu12x outranks the default 2.13.0) and a matching BASE_IMAGE.
ARG BASE_IMAGE=nvidia/cuda:13.0.0-base-ubuntu24.04
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=""

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/cache/huggingface \
    PATH=/opt/seedgrid/bin:$PATH

# Ubuntu 24.04's Python is 3.12 (CI's may be older: every package of seedgrid[worker] has a 3.12
# wheel at its pinned version); a venv, since the system Python refuses pip installs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/seedgrid

WORKDIR /app
COPY constraints.txt ./
# torch first, in its own layer (gigabytes): a change to seedgrid's code does not download it again.
RUN pip install -c constraints.txt ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} torch==2.13.0

# Only what the package needs (not a local .venv or build outputs).
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY worker ./worker
COPY client ./client
RUN pip install -c constraints.txt ".[worker]"

RUN useradd --create-home seedgrid \
    && mkdir -p /cache/huggingface \
    && chown seedgrid /cache/huggingface
USER seedgrid

ENTRYPOINT ["seedgrid"]
CMD ["worker", "--device", "cuda"]
