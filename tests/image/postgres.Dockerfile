# The image test's PostgreSQL: Debian's own (bookworm: 15), trust auth, loopback only, on the
# port in PGPORT (the host's network is shared: keep clear of a PostgreSQL on 5432).
FROM local/debian:bookworm
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/*
USER postgres
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGPORT=55432
CMD ["sh", "-c", "initdb -D /tmp/pgdata -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null && exec postgres -D /tmp/pgdata -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp -p \"$PGPORT\""]
