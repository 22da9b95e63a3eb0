#!/usr/bin/env bash
# Regenerates the hostile CSRs in this folder with the openssl command line (OpenSSL 3). The
# private keys are thrown away; only the CSRs are kept. Run it from any directory.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# req KEYFILE OUT SUBJECT [EXTRA ARGS]: a CSR for an existing key.
req() {
  local key=$1 out=$2 subject=$3
  shift 3
  openssl req -new -key "$key" -subj "$subject" -sha256 "$@" -out "$out"
}

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$work/rsa-1024.key" 2>/dev/null
req "$work/rsa-1024.key" rsa-1024.csr.pem /O=corpus

openssl ecparam -name prime192v1 -genkey -noout -out "$work/p192.key"
req "$work/p192.key" ec-p192.csr.pem /O=corpus

openssl ecparam -name secp256k1 -genkey -noout -out "$work/secp256k1.key"
req "$work/secp256k1.key" ec-secp256k1.csr.pem /O=corpus

openssl dsaparam -out "$work/dsa.param" 1024 2>/dev/null
openssl gendsa -out "$work/dsa-1024.key" "$work/dsa.param" 2>/dev/null
req "$work/dsa-1024.key" dsa-1024.csr.pem /O=corpus

openssl genpkey -algorithm ED448 -out "$work/ed448.key"
openssl req -new -key "$work/ed448.key" -subj /O=corpus -out ed448.csr.pem

openssl ecparam -name prime256v1 -genkey -noout -out "$work/p256.key"
req "$work/p256.key" ec-p256-foreign-cn.csr.pem /CN=intruder.example
req "$work/p256.key" ec-p256-two-cns.csr.pem /CN=first.example/CN=second.example
req "$work/p256.key" ec-p256-dns-san.csr.pem / -addext subjectAltName=DNS:intruder.example
req "$work/p256.key" ec-p256-foreign-uri-san.csr.pem / \
  -addext subjectAltName=URI:urn:uuid:00000000-0000-4000-8000-000000000000
req "$work/p256.key" ec-p256-ip-san.csr.pem / -addext subjectAltName=IP:127.0.0.1
req "$work/p256.key" ec-p256-valid.csr.pem /

# A valid RSA-2048 CSR whose last signature byte is flipped.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/rsa-2048.key" 2>/dev/null
openssl req -new -key "$work/rsa-2048.key" -subj / -sha256 -outform DER -out "$work/good.der"
python3 - "$work/good.der" "$work/bad.der" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[-1] ^= 0x01
open(sys.argv[2], "wb").write(data)
PY
openssl req -inform DER -in "$work/bad.der" -out rsa-2048-bad-signature.csr.pem

# A certificate where a CSR belongs.
openssl req -x509 -key "$work/p256.key" -subj /CN=not-a-csr.example -days 1 -out certificate.pem
