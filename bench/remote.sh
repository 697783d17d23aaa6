#!/usr/bin/env bash
# Remote-store benchmarks.
#   bench/remote.sh store [SIZE_MIB]   service level: the S3 backend (S3Proxy, filesystem backend,
#                                      on 127.0.0.1) and the cache in front of it
# Run from the repository root. Uses JDK 25 (bin/find-jdk.sh) and the S3Proxy jar the s3 module's
# build downloads. Client and server share the machine: on 2 cores, figures swing with load.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-store}
size=${2:-256}
. bin/find-jdk.sh   # sets JAVA_HOME to a JDK 25+
java="$JAVA_HOME/bin/java"
work=$(mktemp -d /tmp/castore-remote-bench.XXXXXX)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill -9 "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT

./mvnw -B -q -pl s3 -am package -DskipTests
./mvnw -B -q -pl s3 dependency:build-classpath -Dmdep.outputFile="$work/cp.txt" >/dev/null
cp="s3/target/castore-s3-0.1.0-SNAPSHOT.jar:core/target/castore-core-0.1.0-SNAPSHOT.jar:$(cat "$work/cp.txt")"

start_s3proxy() {
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$work/s3data"
    cat > "$work/s3proxy.conf" <<CONF
s3proxy.endpoint=http://127.0.0.1:$port
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=bench
s3proxy.credential=bench-secret
jclouds.provider=filesystem-nio2
jclouds.filesystem.basedir=$work/s3data
CONF
    "$java" -jar s3/target/s3proxy/s3proxy.jar --properties "$work/s3proxy.conf" >"$work/s3proxy.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    mkdir -p "$work/s3data/bench"   # the filesystem provider: a directory is a bucket
    export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
    s3_address="s3://bench/run?endpoint=http://127.0.0.1:$port"
}

case "$mode" in
store)
    start_s3proxy
    echo "castore remote store bench: ${size} MiB random blob, S3Proxy on 127.0.0.1 ($(nproc) cores)"
    "$java" -Xmx2g --enable-native-access=ALL-UNNAMED -cp "$cp" bench/RemoteStoreBench.java \
        "$s3_address" "$work/cache" "$size" 2>&1 | grep -v '^SLF4J'
    ;;
*)
    echo "usage: bench/remote.sh store [SIZE_MIB]" >&2
    exit 2
    ;;
esac
