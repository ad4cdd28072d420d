# Offline stand-in for the official nginx image, from Debian's packages (stream as a dynamic module,
# loaded through /etc/nginx/modules-enabled/, which nginx-stream/nginx.conf includes). Built by
# compose/test/offline.sh on the debootstrapped debian:bookworm-slim; same command as the official image.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light libnginx-mod-stream \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 6379
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
