# The image test's stand-in for python:3.11-slim, from Debian's own packages (bookworm: 3.11).
# certs/ holds the host's extra CA certificates (maybe none): PyPI is reached through a
# TLS-inspecting proxy on CI's machines. This is the test's base image only.
FROM local/debian:bookworm
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       ca-certificates python3 python3-venv python3-pip python-is-python3 \
    && rm -rf /var/lib/apt/lists/*
COPY certs/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
