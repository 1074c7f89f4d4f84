# Stand-in for the official python image: Debian bookworm's Python 3.11 with venv and pip.
ARG BASE
FROM ${BASE}
# The machine's CA bundle, kept under its own name so the ca-certificates package never overwrites it;
# pip and Python's ssl read it through these variables, in this image and in every build FROM it.
COPY ca-certificates.crt /etc/ssl/certs/machine-ca.crt
ENV PIP_CERT=/etc/ssl/certs/machine-ca.crt SSL_CERT_FILE=/etc/ssl/certs/machine-ca.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/machine-ca.crt DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get -o Acquire::https::CAInfo=/etc/ssl/certs/machine-ca.crt update -qq \
 && apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
