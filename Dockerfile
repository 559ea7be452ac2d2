# syntax=docker/dockerfile:1
# llmledger: build the wheel and its dependencies in one stage, run from a slim, non-root image.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY common ./common
COPY llmledger ./llmledger
COPY collectors ./collectors
COPY ingest ./ingest
COPY warehouse ./warehouse
COPY migrations ./migrations
COPY alerts ./alerts
COPY advisor ./advisor
COPY dashboards ./dashboards
RUN pip install --upgrade pip && pip install .

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LLMLEDGER_HOME=/var/lib/llmledger
RUN groupadd --system --gid 10001 llmledger \
    && useradd --system --uid 10001 --gid llmledger --home-dir /var/lib/llmledger --create-home llmledger
COPY --from=build /opt/venv /opt/venv
USER llmledger
WORKDIR /var/lib/llmledger
EXPOSE 8000
CMD ["llmledger", "up", "--host", "0.0.0.0", "--port", "8000"]
