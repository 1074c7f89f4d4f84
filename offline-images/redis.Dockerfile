# Stand-in for the official redis image: Debian bookworm's redis-server, run as the redis user in /data.
ARG BASE
FROM ${BASE}
COPY ca-certificates.crt /etc/ssl/certs/machine-ca.crt
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
