#!/bin/sh
# Generates the interop tests' certificates into DIR (at test time; nothing
# secret is committed): two CAs, a server certificate for localhost and
# 127.0.0.1 signed by the first, and one for another host name signed by the
# first. P-256 keys, valid for two days.
# Usage: sh make_certs.sh DIR
set -eu
d=$1
cd "$d"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { # name cn
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
leaf() { # name cn san ca
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial \
    -out "$1.pem" -days 2 -extfile "$1.ext" 2>/dev/null
}
ca ca "dvoice test CA"
ca otherca "dvoice other CA"
leaf server localhost "DNS:localhost,IP:127.0.0.1" ca
leaf wrong wrong.example "DNS:wrong.example" ca
