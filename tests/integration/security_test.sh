#!/usr/bin/env bash
# TLS, mTLS and bearer tokens, with certificates made by openssl at test
# time: the client reaches the server over TLS with a client certificate
# and the tokens, and the HTTP port over HTTPS; without the certificate, or with a wrong or missing
# token, calls are refused with UNAUTHENTICATED; probes stay open.
set -euo pipefail
BIN=$1
SRC=$2
source "$SRC/tests/integration/lib.sh"
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# A CA, a server certificate for 127.0.0.1/localhost, and a client certificate.
cd "$WORK"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cnnserve test CA" \
  -keyout ca.key -out ca.pem 2>/dev/null
for who in server client; do
  openssl req -newkey rsa:2048 -nodes -subj "/CN=cnnserve $who" -keyout $who.key -out $who.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%s\n' \
    "$([[ $who == server ]] && echo serverAuth || echo clientAuth)" >$who.ext
  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile $who.ext -out $who.pem 2>/dev/null
done
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=stranger" -keyout stranger.key \
  -out stranger.pem 2>/dev/null
echo "inference-secret" >infer.token
echo "control-secret" >control.token
echo "wrong" >wrong.token
cd - >/dev/null

start_server "$BIN" --model_repository="$SRC/models" --model_control_mode=explicit --load_model=digits_lenet5 \
  --tls_cert="$WORK/server.pem" --tls_key="$WORK/server.key" --tls_client_ca="$WORK/ca.pem" \
  --auth_token_file="$WORK/infer.token" --control_token_file="$WORK/control.token"
S=(--server=127.0.0.1:$GRPC_PORT --tls_ca="$WORK/ca.pem")
CERT=(--tls_cert="$WORK/client.pem" --tls_key="$WORK/client.key")
C="$BIN/cnnserve-client"

# Everything right: classify (inference token) and models (control token).
"$C" "${S[@]}" "${CERT[@]}" --token_file="$WORK/infer.token" classify --model=digits_lenet5 --top_k=1 \
  "$SRC/samples/digit_4.png" | tee "$WORK/ok.txt" || fail "classify with certificate and token"
grep -q "1\. 4 " "$WORK/ok.txt" || fail "digit 4 over mTLS"
"$C" "${S[@]}" "${CERT[@]}" --token_file="$WORK/control.token" models | grep -q "digits_lenet5 .*READY" ||
  fail "models with the control token"

expect_unauthenticated() {
  local what=$1
  shift
  if "$C" "$@" >"$WORK/out.txt" 2>&1; then fail "$what was accepted"; return; fi
  grep -q "UNAUTHENTICATED" "$WORK/out.txt" || { cat "$WORK/out.txt"; fail "$what: not UNAUTHENTICATED"; }
  cat "$WORK/out.txt"
}
expect_unauthenticated "no client certificate" "${S[@]}" --token_file="$WORK/infer.token" \
  classify --model=digits_lenet5 "$SRC/samples/digit_4.png"
expect_unauthenticated "a wrong token" "${S[@]}" "${CERT[@]}" --token_file="$WORK/wrong.token" \
  classify --model=digits_lenet5 "$SRC/samples/digit_4.png"
expect_unauthenticated "no token" "${S[@]}" "${CERT[@]}" classify --model=digits_lenet5 "$SRC/samples/digit_4.png"
expect_unauthenticated "the inference token for control" "${S[@]}" "${CERT[@]}" \
  --token_file="$WORK/infer.token" unload digits_lenet5
# A certificate the CA did not sign does not get through the handshake.
if "$C" "${S[@]}" --tls_cert="$WORK/stranger.pem" --tls_key="$WORK/stranger.key" \
  --token_file="$WORK/infer.token" classify --model=digits_lenet5 "$SRC/samples/digit_4.png" >/dev/null 2>&1; then
  fail "a stranger's certificate was accepted"
fi
# Plaintext to a TLS port fails; a token is never sent without TLS.
if "$C" --server=127.0.0.1:$GRPC_PORT health >/dev/null 2>&1; then fail "plaintext reached a TLS server"; fi
if "$C" --server=127.0.0.1:$GRPC_PORT --token_file="$WORK/infer.token" health >"$WORK/out.txt" 2>&1 ||
  ! grep -q "need TLS" "$WORK/out.txt"; then
  fail "a token without TLS was not refused by the client"
fi
# Probes need no secret (health over TLS without certificate or token).
"$C" "${S[@]}" health | grep -q "ready: yes" || fail "health over TLS"

# The HTTP port (health, metrics) is HTTPS with the same certificate, no
# client certificate needed; plaintext gets no HTTP answer there.
https_get() {  # PATH: the response, verified against the test CA
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' "$1" |
    openssl s_client -connect 127.0.0.1:$HTTP_PORT -CAfile "$WORK/ca.pem" -verify_return_error \
      -verify_ip 127.0.0.1 -quiet 2>/dev/null
}
https_get /v2/health/ready | head -1 | grep -q "^HTTP/1.1 200 " || fail "HTTPS /v2/health/ready"
https_get /metrics | grep -q "^cnnserve_build_info" || fail "HTTPS /metrics"
https_get /nope | head -1 | grep -q "^HTTP/1.1 404 " || fail "HTTPS unknown path is not 404"
exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT
# The server may reset the connection before the write: that is a refusal too.
printf 'GET /v2/health/ready HTTP/1.0\r\n\r\n' >&3 2>/dev/null || true
if timeout 15 head -c 200 <&3 | grep -q "HTTP/1"; then fail "plaintext HTTP answered on the HTTPS port"; fi
exec 3<&-
# A bad certificate path stops the server at start, saying which file.
if "$BIN/cnnserve" --model_repository="$SRC/models" --grpc_port=0 --http_port=0 \
  --tls_cert="$WORK/missing.pem" --tls_key="$WORK/server.key" >"$WORK/bad.txt" 2>&1; then
  fail "a missing certificate file was accepted"
fi
grep -q "missing.pem" "$WORK/bad.txt" || { cat "$WORK/bad.txt"; fail "the error does not name the file"; }

[[ $failed -eq 0 ]] || { echo "security: $failed failures"; exit 1; }
echo "PASS: TLS, mTLS and tokens admit the right callers and refuse the rest"
