# The seedgrid worker: a CUDA build of PyTorch with seedgrid[worker] on top.
# The base image's torch satisfies seedgrid's `torch>=2.2`, so pip keeps it.
ARG BASE_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/cache/huggingface

WORKDIR /app
# Only what the package needs (not a local .venv or build outputs).
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY worker ./worker
COPY client ./client
RUN pip install ".[worker]"

RUN useradd --create-home seedgrid \
    && mkdir -p /cache/huggingface \
    && chown seedgrid /cache/huggingface
USER seedgrid

ENTRYPOINT ["seedgrid"]
CMD ["worker", "--device", "cuda"]
