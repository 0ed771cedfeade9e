#!/bin/bash
# tests/run.sh - den's test command (CI runs it through .ci/run).
#
#   sudo bash tests/run.sh [CARGO-TEST-ARGS...] [-- TEST-BINARY-ARGS...]
#
# As root: installs the Debian packages the tests need (only when something is
# missing), creates the unprivileged test users den-sub (with subordinate ids)
# and den-nosub (without), makes /dev/net/tun usable, starts three loopback
# registries from ../shared/images (plain, basic auth, token auth) and pushes the
# test images into them, builds den, copies the binary to a world-readable place
# and runs `cargo test --release --workspace --no-fail-fast -- --test-threads=2` with the
# DEN_TEST_* variables exported. Everything it started is stopped on exit.
#
# Examples:
#   sudo bash tests/run.sh                               # everything
#   sudo bash tests/run.sh --test smoke -- --nocapture   # one test file, with output
#
# Environment:
#   DEN_SHARED      the shared data dir (default: the checkout's ../shared); under
#                   CI=true its absence is an error, otherwise registry tests skip
#   DEN_TEST_KEEP=1 keep the run dir (/tmp/den-ci.*) and its registries' state
#                   (registries are still stopped)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C.UTF-8

say() { printf '== run.sh: %s\n' "$*" >&2; }
die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (the tests create users and run den as them): sudo bash $0"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
T0=$SECONDS

# ---------------------------------------------------------------- cargo
# sudo's secure_path usually lacks rustup's bin dir.
if ! command -v cargo >/dev/null; then
    for d in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin; do
        [ -x "$d/cargo" ] && { PATH=$d:$PATH; break; }
    done
fi
command -v cargo >/dev/null || die "cargo not found (install a Rust toolchain for root, e.g. with rustup)"

# ---------------------------------------------------------------- one-time machine set-up
# Serialized: other runs on the same machine may set up at the same time.
exec 9>/tmp/.den-ci-setup.lock
flock 9

PKGS=(uidmap passt docker-registry skopeo jq apache2-utils curl openssl python3 e2fsprogs strace
      ca-certificates gcc libc6-dev iproute2 util-linux nftables)
missing=()
for p in "${PKGS[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${PKGS[@]}"
fi
for c in newuidmap newgidmap pasta docker-registry skopeo jq htpasswd curl openssl python3 runuser flock timeout; do
    command -v "$c" >/dev/null || die "$c still missing after the package install"
done

# Test users. -K SUB_*_COUNT=0: useradd must not allocate subordinate ids itself.
for u in den-sub den-nosub; do
    if ! id -u "$u" >/dev/null 2>&1; then
        say "creating user $u"
        useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$u"
    fi
done
for f in /etc/subuid /etc/subgid; do
    touch "$f"
    nosub_uid=$(id -u den-nosub)
    sub_uid=$(id -u den-sub)
    if grep -qE "^(den-nosub|$nosub_uid):" "$f"; then
        sed -i -E "/^(den-nosub|$nosub_uid):/d" "$f"
    fi
    if ! grep -qx 'den-sub:100000:65536' "$f"; then
        sed -i -E "/^(den-sub|$sub_uid):/d" "$f"
        echo 'den-sub:100000:65536' >> "$f"
    fi
done

# pasta (run by the unprivileged users) needs the tun device.
if [ ! -c /dev/net/tun ]; then
    mkdir -p /dev/net
    mknod -m 0666 /dev/net/tun c 10 200
fi
chmod 0666 /dev/net/tun

flock -u 9
exec 9>&-

# ---------------------------------------------------------------- run dir, clean-up
# Remove what runs killed with SIGKILL left behind: their registries and dirs.
kill_state_dir() { # DIR: stop the registry/token server whose state dir is DIR
    local dir=$1 f pid i
    for f in "$dir/registry.pid" "$dir/token.pid"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f" 2>/dev/null) || continue
        [[ $pid =~ ^[0-9]+$ ]] || continue
        # only if that pid still is our process (its command line names DIR)
        tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/" || continue
        kill "$pid" 2>/dev/null || true
        # gone, or a zombie (empty cmdline) waiting for init to reap it
        for i in $(seq 50); do
            [ -n "$(tr -d '\0' < "/proc/$pid/cmdline" 2>/dev/null)" ] || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
}
for old in /tmp/den-ci.*; do
    [ -d "$old" ] && [ -f "$old/owner.pid" ] || continue
    kill -0 "$(cat "$old/owner.pid")" 2>/dev/null && continue
    for s in "$old"/reg/*; do [ -d "$s" ] && kill_state_dir "$s"; done
    rm -rf --one-file-system "$old"
done

RUNDIR=$(mktemp -d /tmp/den-ci.XXXXXX)
chmod 0755 "$RUNDIR"
echo $$ > "$RUNDIR/owner.pid"
mkdir -p "$RUNDIR/reg" "$RUNDIR/tmp" "$RUNDIR/bin" "$RUNDIR/t"
chmod 0755 "$RUNDIR/bin"
chmod 0711 "$RUNDIR/t"

cleanup() {
    local rc=$? s
    trap - EXIT INT TERM HUP
    for s in "$RUNDIR"/reg/*; do [ -d "$s" ] && kill_state_dir "$s"; done
    if [ -n "${DEN_TEST_KEEP:-}" ]; then
        say "kept $RUNDIR"
    else
        rm -rf --one-file-system "$RUNDIR" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------- shared data
SHARED=${DEN_SHARED:-$(dirname "$REPO")/shared}
HAVE_SHARED=
if [ -f "$SHARED/images/start-registry" ] && [ -f "$SHARED/images/oci/index.json" ]; then
    SHARED=$(cd "$SHARED" && pwd)
    HAVE_SHARED=1
elif [ "${CI:-}" = true ]; then
    die "shared data not found at $SHARED (set DEN_SHARED); required under CI=true"
else
    say "WARNING: shared data not found at $SHARED (set DEN_SHARED): no registries, tests that need them will skip"
fi

# The tests run den as the test users: they must be able to read the shared data.
TEST_SHARED=
if [ -n "$HAVE_SHARED" ]; then
    TEST_SHARED=$SHARED
    if ! runuser -u den-sub -- test -r "$SHARED/images/oci/index.json" 2>/dev/null; then
        TEST_SHARED=$RUNDIR/shared
        say "$SHARED is not readable by the test users: linking it to $TEST_SHARED"
        cp -al "$SHARED" "$TEST_SHARED" 2>/dev/null || { rm -rf "$TEST_SHARED"; cp -a "$SHARED" "$TEST_SHARED"; }
        chmod -R a+rX "$TEST_SHARED" 2>/dev/null || true
    fi
fi

# ---------------------------------------------------------------- registries
port_free() { # PORT: nobody listens on it
    python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like the registry; ignores TIME_WAIT
s.bind(("127.0.0.1", int(sys.argv[1])))
EOF
}
USED_PORTS=" "
start_reg() { # NAME WANT-PORT [start-registry args]: starts it, sets REG_PORT
    local name=$1 p=$2 tries=0 out
    shift 2
    while :; do
        tries=$((tries + 1))
        [ $tries -le 40 ] || die "no free port for the $name registry"
        if [[ $USED_PORTS == *" $p "* ]] || ! port_free "$p" ||
            { [ "${1:-}" = -T ] && { [[ $USED_PORTS == *" $((p + 100)) "* ]] || ! port_free $((p + 100)); }; }; then
            p=$((p + 1)); continue
        fi
        if out=$("$SHARED/images/start-registry" -p "$p" -d "$RUNDIR/reg/$name" "$@" 2>&1); then
            break
        fi
        say "start-registry $name on $p failed, trying the next port: $out"
        kill_state_dir "$RUNDIR/reg/$name"
        p=$((p + 1))
    done
    USED_PORTS+="$p $((p + 100)) "
    REG_PORT=$p
}

CREDS=den:denpass
if [ -n "$HAVE_SHARED" ]; then
    start_reg plain 5000;             PORT_PLAIN=$REG_PORT
    start_reg basic 5001 -a "$CREDS"; PORT_BASIC=$REG_PORT
    start_reg token 5002 -T "$CREDS"; PORT_TOKEN=$REG_PORT
    # start-registry does not wait for the token server
    for i in $(seq 100); do
        code=$(curl -s -o /dev/null -w '%{http_code}' \
            "http://127.0.0.1:$((PORT_TOKEN + 100))/token?service=den-test-registry" || true)
        [ "$code" = 200 ] && break
        [ "$i" = 100 ] && die "token server on $((PORT_TOKEN + 100)) did not answer (last: $code): $(tail -5 "$RUNDIR/reg/token/token.log")"
        sleep 0.1
    done
    say "registries: plain 127.0.0.1:$PORT_PLAIN, basic 127.0.0.1:$PORT_BASIC, token 127.0.0.1:$PORT_TOKEN (token server :$((PORT_TOKEN + 100)))"

    # skopeo wants a writable TMPDIR
    export TMPDIR=$RUNDIR/tmp
    push_all() { # REGISTRY [USER:PASSWORD]
        local reg=$1 creds=(--insecure-policy) dir dest ref
        [ -n "${2:-}" ] && creds+=(--dest-creds "$2")
        "$SHARED/images/push-images" "$reg" "${2:-}"
        for pair in busybox-oci/latest/musl/amd64=library/busybox:1.38.0-musl \
                    busybox-oci/latest/glibc/amd64=library/busybox:1.38.0-glibc \
                    hello-world-oci/amd64/oci=library/hello-world:latest; do
            dir=$SHARED/real-rootfs/${pair%%=*}
            dest=${pair#*=}
            ref=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"] // empty' "$dir/index.json")
            skopeo copy -q --dest-tls-verify=false "${creds[@]}" "oci:$dir${ref:+:$ref}" "docker://$reg/$dest"
            echo "pushed $reg/$dest"
        done
    }
    pids=()
    for r in "$PORT_PLAIN=" "$PORT_BASIC=$CREDS" "$PORT_TOKEN=$CREDS"; do
        push_all "127.0.0.1:${r%%=*}" "${r#*=}" > "$RUNDIR/push-${r%%=*}.log" 2>&1 &
        pids+=($!)
    done
    for i in 0 1 2; do
        if ! wait "${pids[$i]}"; then
            cat "$RUNDIR"/push-*.log >&2
            die "pushing the test images failed"
        fi
    done
    unset TMPDIR
    say "pushed $(grep -c '^pushed' "$RUNDIR"/push-*.log | awk -F: '{s+=$2} END {print s}') images ($((SECONDS - T0)) s)"
fi

# ---------------------------------------------------------------- lints
# The workspace lints (undocumented_unsafe_blocks, unsafe_code, …) only hold
# if something checks them: formatting and clippy warnings fail the run.
say "checking formatting and lints"
cargo fmt --all -- --check || die "cargo fmt --check failed: run cargo fmt --all"
cargo clippy --release --workspace --all-targets -- -D warnings || die "cargo clippy found warnings"

# ---------------------------------------------------------------- build
say "building"
cargo build --release --workspace --bins
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
install -m 0755 "$TARGET_DIR/release/den" "$RUNDIR/bin/den"

# ---------------------------------------------------------------- test
export DEN_BIN=$RUNDIR/bin/den
export DEN_TEST_USER_SUB=den-sub
export DEN_TEST_USER_NOSUB=den-nosub
export DEN_TEST_TMP=$RUNDIR/t
export DEN_TEST_REGISTRY_CREDS=$CREDS
if [ -n "$HAVE_SHARED" ]; then
    export DEN_TEST_SHARED=$TEST_SHARED
    export DEN_TEST_REGISTRY=127.0.0.1:$PORT_PLAIN
    export DEN_TEST_REGISTRY_BASIC=127.0.0.1:$PORT_BASIC
    export DEN_TEST_REGISTRY_TOKEN=127.0.0.1:$PORT_TOKEN
else
    unset DEN_TEST_SHARED DEN_TEST_REGISTRY DEN_TEST_REGISTRY_BASIC DEN_TEST_REGISTRY_TOKEN
fi

# Arguments before "--" go to cargo test, the rest to the test binaries.
CARGO_ARGS=() TEST_ARGS=()
while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then shift; TEST_ARGS=("$@"); break; fi
    CARGO_ARGS+=("$1"); shift
done

say "testing (set-up took $((SECONDS - T0)) s)"
rc=0
cargo test --release --workspace --no-fail-fast "${CARGO_ARGS[@]}" -- --test-threads=2 "${TEST_ARGS[@]}" || rc=$?
say "cargo test exited with $rc ($((SECONDS - T0)) s in all)"
exit "$rc"
