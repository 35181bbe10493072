#!/usr/bin/env bash
# Builds and runs the Dockerfile without a Docker engine: each stage's steps
# are read from the Dockerfile itself (so the test cannot drift from it) and
# executed in a fresh Debian bookworm root made by debootstrap:
#   build stage:   COPY the committed tree, RUN each step (install-deps,
#                  Release build, unit tests) in chroot 1;
#   runtime stage: RUN each step in a second fresh chroot, COPY --from=build
#                  only the artifacts the Dockerfile names, then start the
#                  ENTRYPOINT as the USER, classify a sample digit through it
#                  from outside, run the HEALTHCHECK command, and tear down.
# Needs root, debootstrap and Debian's mirror. Slow (a full build): ctest
# label "deploy", run by `scripts/test --deploy`, not by default CI.
#   tests/deploy/dockerfile_test.sh SOURCE_DIR HOST_BIN_DIR
set -euo pipefail
SRC=$(cd "$1" && pwd)
HOST_BIN=$(cd "$2" && pwd)
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root for debootstrap and chroot"; exit 77; }
command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null
CACHE=${DEPLOY_ROOT_CACHE:-/var/tmp/cnnserve-bookworm-minbase.tar}
WORK=$(mktemp -d /var/tmp/cnnserve-dockerfile.XXXXXX)
ROOTS=()
SERVER_PID=

unmount_all() {
  local root=$1
  for m in proc dev tmp; do
    mountpoint -q "$root/$m" && { umount "$root/$m" 2>/dev/null || umount -l "$root/$m"; }
  done
  return 0
}
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
  fi
  for r in "${ROOTS[@]}"; do unmount_all "$r"; done
  # Never delete through a mount that is still there (it would reach the host's /dev).
  for r in "${ROOTS[@]}"; do
    for m in proc dev tmp; do
      if mountpoint -q "$r/$m"; then echo "not removing $WORK: $r/$m still mounted"; return; fi
    done
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

new_root() {
  local root=$1
  mkdir -p "$root"
  if [[ ! -f "$CACHE" ]]; then
    local mirror
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || echo http://deb.debian.org/debian)
    debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
    tar -C "$root" -cf "$CACHE" .
  else
    tar -C "$root" -xf "$CACHE"
  fi
  chmod 0755 "$root"  # an image's / is world-readable; the cached tarball may say 0700
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/" 2>/dev/null && rm -f "$root/etc/apt/sources.list"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  mount --bind /dev "$root/dev"
  mount -t tmpfs tmpfs "$root/tmp"
  ROOTS+=("$root")
}

# The Dockerfile's instructions, stage by stage ("<stage> <INSTRUCTION> <args>"),
# with continuation lines joined and comments dropped.
parse() {
  awk '
    /^[[:space:]]*#/ { next }
    { line = line $0 }
    /\\$/ { sub(/\\$/, "", line); next }
    line ~ /^[[:space:]]*$/ { line = ""; next }
    {
      split(line, w, " ")
      if (toupper(w[1]) == "FROM") stage++
      print stage, line
      line = ""
    }' "$SRC/Dockerfile"
}

run_stage() {
  local stage=$1 root=$2 user=root workdir=/ envs=()
  while read -r n instr rest; do
    [[ "$n" == "$stage" ]] || continue
    case "${instr^^}" in
      FROM) ;;
      WORKDIR) workdir=$rest; mkdir -p "$root$workdir" ;;
      ENV) envs+=("$rest") ;;
      USER) user=$rest ;;
      COPY)
        if [[ "$rest" == --from=* ]]; then
          read -r -a args <<<"${rest#--from=* }"
          local dest=${args[-1]}
          unset 'args[-1]'
          mkdir -p "$root$dest"
          # As Docker does: a directory's contents go into dest, a file into it.
          for a in "${args[@]}"; do
            if [[ -d "$BUILD_ROOT$a" ]]; then cp -a "$BUILD_ROOT$a/." "$root$dest/"; else cp -a "$BUILD_ROOT$a" "$root$dest/"; fi
          done
        else
          # The build context: the committed tree (what .dockerignore leaves is a subset).
          read -r -a args <<<"$rest"
          mkdir -p "$root${args[-1]}"
          git -C "$SRC" archive HEAD | tar -x -C "$root${args[-1]}"
        fi ;;
      RUN)
        echo "== stage $stage: RUN $rest"
        local prefix=""
        for e in "${envs[@]}"; do prefix+="export $e; "; done
        chroot "$root" /bin/bash -c "cd '$workdir' && $prefix$rest" ;;
      EXPOSE|HEALTHCHECK|ENTRYPOINT|CMD|LABEL) ;;
      *) echo "FAIL: the test does not know Dockerfile instruction '$instr'"; exit 1 ;;
    esac
  done < <(parse)
  STAGE_USER=$user
}

BUILD_ROOT=$WORK/build
RUNTIME_ROOT=$WORK/runtime
new_root "$BUILD_ROOT"
run_stage 1 "$BUILD_ROOT"
new_root "$RUNTIME_ROOT"
run_stage 2 "$RUNTIME_ROOT"

# The runtime root holds no compiler and no -dev package.
if chroot "$RUNTIME_ROOT" bash -c 'command -v g++ || dpkg -l | grep -- "-dev "'; then
  echo "FAIL: the runtime stage has build tools or -dev packages"; exit 1
fi
echo "runtime root: $(du -sm --exclude=proc --exclude=dev --exclude=tmp "$RUNTIME_ROOT" | cut -f1) MB"

# ENTRYPOINT as the image's USER, with ports picked by the kernel.
entry=$(parse | awk '$1 == 2 && toupper($2) == "ENTRYPOINT" { $1 = ""; $2 = ""; print }' |
        sed -E 's/^ *\[//; s/\] *$//; s/", *"/ /g; s/"//g')
health=$(parse | awk '$1 == 2 && toupper($2) == "HEALTHCHECK" { sub(/.* CMD /, ""); print }' |
         sed -E 's/^ *\[//; s/\] *$//; s/", *"/ /g; s/"//g')
user=$(parse | awk '$1 == 2 && toupper($2) == "USER" { print $3 }' | tail -1)
[[ -n "$entry" && -n "$health" && -n "$user" && "$user" != "root" && "$user" != "0" ]] || {
  echo "FAIL: ENTRYPOINT, HEALTHCHECK and a non-root USER are required"; exit 1; }
chroot --userspec="$user:$user" "$RUNTIME_ROOT" $entry --host=127.0.0.1 --grpc_port=0 --http_port=0 \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do grep -q "cnnserve listening" "$WORK/server.log" && break; sleep 0.2; done
line=$(grep "cnnserve listening" "$WORK/server.log") || { cat "$WORK/server.log"; echo "FAIL: no server"; exit 1; }
GRPC_PORT=$(sed -E 's/.*grpc=[^ ]*:([0-9]+).*/\1/' <<<"$line")
grep -q "uid=$user" <(chroot --userspec="$user:$user" "$RUNTIME_ROOT" id) || { echo "FAIL: user"; exit 1; }

# From outside the root, with the host's client.
"$HOST_BIN/cnnserve-client" classify --server=127.0.0.1:$GRPC_PORT --model=digits_lenet5 --top_k=1 \
  "$SRC/samples/digit_7.png" | tee "$WORK/classify.txt"
grep -q "1\. 7 " "$WORK/classify.txt" || { echo "FAIL: digit 7 was not classified as 7"; exit 1; }
# The HEALTHCHECK command, inside, as the image runs it (its port is the default 8001,
# so point it at the one this server took).
chroot --userspec="$user:$user" "$RUNTIME_ROOT" ${health/127.0.0.1:8001/127.0.0.1:$GRPC_PORT}
echo "PASS: the Dockerfile builds, tests, and serves from its runtime stage"
