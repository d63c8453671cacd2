# trio-exec in a container: `docker build -t trio-exec .` from a checkout.
#   docker run -p 8765:8765 -v "$PWD/token:/run/secrets/trio-exec-token:ro" trio-exec
# Commands run inside this container as its user (uid 10001), in /workspace: mount the
# workspace there, and build FROM this image to add the toolchain the agent's commands need.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY trio_exec ./trio_exec
RUN pip install --no-cache-dir /src \
    && rm -rf /src \
    && useradd --no-log-init --create-home --uid 10001 --user-group --shell /bin/bash dev \
    && install -d -o dev -g dev -m 755 /workspace

USER 10001:10001
WORKDIR /workspace
EXPOSE 8765

# /readyz answers 200 while the daemon serves; no token needed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8765/readyz', timeout=2)"]

ENTRYPOINT ["trio-exec", "serve"]
CMD ["--listen", "ws://0.0.0.0:8765", "--auth-token-file", "/run/secrets/trio-exec-token", "--log-format", "json", "--log-level", "INFO"]
