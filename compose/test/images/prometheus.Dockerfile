# Offline stand-in for prom/prometheus, from Debian's package. Built by compose/test/offline.sh on the
# debootstrapped debian:bookworm-slim; like the official image it runs prometheus as its entrypoint, as
# nobody, with its data in /prometheus (compose/docker-compose.yml passes the flags).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus \
 && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
