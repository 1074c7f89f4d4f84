# Stand-in for the official nginx image: Debian bookworm's nginx.
ARG BASE
FROM ${BASE}
COPY ca-certificates.crt /etc/ssl/certs/machine-ca.crt
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
