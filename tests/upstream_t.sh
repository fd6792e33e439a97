#!/bin/sh
# Runs tests/t_upstream with certificates made here by openssl: cert (127.0.0.1 and
# localhost, self-signed), other (an unrelated CA), wrong (self-signed for another name).
B=${BUILD:-build}
command -v openssl >/dev/null || { echo "1..0 # SKIP no openssl command"; exit 0; }
command -v python3 >/dev/null || { echo "1..0 # SKIP no python3"; exit 0; }
T=$(mktemp -d /tmp/guardd-up-XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
mk() {	# mk NAME SUBJECT SAN
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/$1.key" -out "$T/$1.pem" -days 2 \
		-subj "$2" -addext "subjectAltName=$3" 2>/dev/null || { echo "Bail out! openssl req failed"; exit 1; }
}
mk cert /CN=localhost DNS:localhost,IP:127.0.0.1
mk other /CN=other DNS:other.invalid
mk wrong /CN=wrong DNS:wrong.invalid
$B/tests/t_upstream "$T"
