# The one image of every mmn-stream service in docker-compose.yml (replay, join, train, evaluate).
FROM python:3.11-slim

# torch first, pinned, from the CPU index: an unpinned torch pulls a multi-GB CUDA build.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /src
COPY pyproject.toml README.md ./
COPY simulator simulator
COPY streaming streaming
COPY model model
COPY ops ops
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 1000 mmn \
    && mkdir -p /data /snapshots /var/lib/mmn \
    && chown mmn /snapshots /var/lib/mmn

USER mmn
# The joiner writes its workers' logs and Faust its local table state under the working folder.
WORKDIR /var/lib/mmn
CMD ["mmn", "--help"]
