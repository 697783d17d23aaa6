#!/usr/bin/env bash
# Remote-store benchmarks.
#   bench/remote.sh store [SIZE_MIB]   service level: the S3 backend (S3Proxy, filesystem backend,
#                                      on 127.0.0.1) and the cache in front of it
#   bench/remote.sh mount [FILES [BIG_MIB]]
#       the mount workloads of bench/mount.sh (bench/lib-mount.sh: walk, lstat, read, seq-random,
#       pread, par4) on a corpus of FILES small files (under 1 MiB, from /usr/share and /usr/include; default 50000)
#       and one BIG_MIB random file (default 1024), mounted from the local store, from `castore daemon`
#       on 127.0.0.1 (grpc+http://) and from S3Proxy (s3://), the remote ones each with --cache:
#         cold  fresh mount, empty --cache, page cache dropped (client and servers)
#         warm  fresh mount, page cache dropped, --cache as the cold run left it
#       The local store is mounted fresh with the page cache dropped (its only state); the table gives
#       every figure and its ratio to local (throughput ratios: > 1 is faster). Needs root and gcc.
#       Env: BENCH_COLD cold runs (best of; default 2), BENCH_WARM rounds of one local and one warm run
#       of each remote store, alternated, each round starting one system later (best of; default
#       3), BENCH_CPU (default 0) pins the
#       mount and the clients as bench/mount.sh does; the servers are not pinned (another machine's
#       work in real use). BENCH_WORKLOADS overrides the workload list, BENCH_SYSTEMS the remote
#       stores (default "grpc s3"; a system left out shows "-" in the table). BENCH_SETTLE=SECONDS
#       (default 0: used at once) leaves each fresh mount idle that long before its page cache is
#       dropped and the workload starts, so that its idle-time warm-up has run (as bench/mount.sh).
#   bench/remote.sh transfer [FILES]
#       import of FILES small files (the mount corpus's tree; default 50000) into the local store,
#       `castore daemon` on 127.0.0.1 and S3Proxy, the same import again (everything stored), and
#       an export back, each checked with diff; then `castore copy` of the tree from the local
#       store into a fresh store of each kind, and again; times and their ratio to the local store's.
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
servers=()
cleanup() {
    if [ -n "${mnt:-}" ] && mountpoint -q "$mnt"; then umount "$mnt" 2>/dev/null || umount -l "$mnt"; fi
    # `|| true`: under set -e a failing wait (a killed server's status) would end this handler
    # early and leave the other servers running.
    if [ -n "${MOUNT_PID:-}" ]; then kill "$MOUNT_PID" 2>/dev/null || true; wait "$MOUNT_PID" 2>/dev/null || true; fi
    for pid in $server_pid "${servers[@]}"; do kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# One reactor for both goals: the s3 module's classpath names core's freshly built jar, so this
# also works on a machine whose ~/.m2 holds no castore artifacts. Each module writes the file in
# turn; s3 comes last.
./mvnw -B -q -pl s3 -am package dependency:build-classpath -DskipTests -Dmdep.outputFile="$work/cp.txt"
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
    servers+=("$server_pid")
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    mkdir -p "$work/s3data/bench"   # the filesystem provider: a directory is a bucket
    export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
    s3_address="s3://bench/run?endpoint=http://127.0.0.1:$port"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Serves a fresh local store ($work/${1:-daemon-store}) on 127.0.0.1 with `castore daemon`; sets grpc_address.
start_daemon() {
    local port name=${1:-daemon-store}; port=$(free_port)
    ./castore daemon --store "$work/$name" --listen "127.0.0.1:$port" 2>"$work/$name.log" &
    servers+=($!)
    for _ in $(seq 1 600); do grep -q 'castore daemon: serving' "$work/$name.log" && break; sleep 0.1; done
    grep -q 'castore daemon: serving' "$work/$name.log" || { cat "$work/$name.log" >&2; exit 1; }
    grpc_address="grpc+http://127.0.0.1:$port"
}

# Mounts store $1 (with --cache $2 unless empty) fresh, page cache dropped; sets BASE.
MOUNT_PID=
remount() {
    if mountpoint -q "$mnt"; then umount "$mnt" 2>/dev/null || umount -l "$mnt"; fi
    if [ -n "$MOUNT_PID" ]; then wait "$MOUNT_PID" 2>/dev/null || true; MOUNT_PID=; fi
    local args=(--store "$1" --threads "$THREADS")
    [ -n "$2" ] && args+=(--cache "$2")
    coproc CASTORE_MOUNT { exec "${PIN[@]}" ./castore mount "${args[@]}" "$mnt" 2>&1; }
    MOUNT_PID=$!
    local ready=""
    while [[ "$ready" != "castore: mounted "* ]]; do
        [ -n "$ready" ] && echo "castore mount: $ready" >&2
        read -r -t 300 ready <&"${CASTORE_MOUNT[0]}" || { echo "castore mount did not start: $ready" >&2; exit 1; }
    done
    BASE="$mnt"
    stat "$BASE/tree" >/dev/null   # the mount's own start-up is not part of any workload
    sleep "${BENCH_SETTLE:-0}"
    drop_caches                    # right before the workload: see bench/mount.sh, start
}

# $work/corpus/tree: the first $1 files under 1 MiB of /usr/share and /usr/include, in name order.
build_tree() {
    mkdir -p "$work/corpus/tree"
    { find /usr/share /usr/include -xdev -type f -size -1024k -print0 2>/dev/null | LC_ALL=C sort -z \
        | head -z -n "$1" >"$work/corpus.list"; } || true   # sort ends by SIGPIPE
    tar -C / --null -T "$work/corpus.list" -cf - 2>/dev/null | tar -C "$work/corpus/tree" -xf -
}

# Seconds (3 decimals) that the command takes.
seconds() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.2f}')"
}

# Import of a tree of many small files into each store, again (everything stored), and export
# back: the paths that batch small files over a daemon and run S3 requests side by side
# (docs/grpc.md, "Uploads in batches", "Reads in batches"). Then `castore copy` of the tree from
# the local store into a fresh store of each kind, and again (everything there: one question).
transfer_bench() {
    local files=$1
    ./castore --version >/dev/null   # build the CLI outside any measurement
    echo "building the corpus: $files files ..." >&2
    build_tree "$files"
    start_s3proxy
    start_daemon copy-daemon-store
    local copy_grpc=$grpc_address
    start_daemon
    local n=0 sys store dest
    declare -A t
    for sys in local grpc s3; do
        n=$((n + 1))
        case $sys in
        local) store="$work/transfer-store" dest="$work/copy-store" ;;
        grpc) store="$grpc_address" dest="$copy_grpc" ;;
        s3) store="${s3_address/\/run\?//transfer?}" dest="${s3_address/\/run\?//copy?}" ;;
        esac
        t[$sys,import]=$(seconds ./castore import -q --store "$store" --name tree "$work/corpus/tree")
        t[$sys,again]=$(seconds ./castore import -q --store "$store" --name tree "$work/corpus/tree")
        t[$sys,export]=$(seconds ./castore export -q --store "$store" tree "$work/export-$sys")
        diff -r --no-dereference "$work/corpus/tree" "$work/export-$sys" >/dev/null || { echo "export from $sys differs" >&2; exit 1; }
        rm -rf "$work/export-$sys"
        t[$sys,copy]=$(seconds ./castore copy -q --store "$work/transfer-store" --to "$dest" tree)
        t[$sys,copyagain]=$(seconds ./castore copy -q --store "$work/transfer-store" --to "$dest" tree)
        ./castore export -q --store "$dest" tree "$work/export-$sys"
        diff -r --no-dereference "$work/corpus/tree" "$work/export-$sys" >/dev/null || { echo "copy to $sys differs" >&2; exit 1; }
        rm -rf "$work/export-$sys"
    done
    echo "castore remote transfer bench: $files files ($(du -sh "$work/corpus/tree" | cut -f1)), $(nproc) cores, nothing pinned"
    echo "seconds; in brackets the time against the local store's (> 1: slower); copy: from a local store into a fresh one"
    echo "| | import | again (all stored) | export | copy | copy again |"
    echo "|---|---:|---:|---:|---:|---:|"
    for sys in local grpc s3; do
        local row="| $sys"
        for op in import again export copy copyagain; do
            row+=" | ${t[$sys,$op]} ($(python3 -c "print(f'{${t[$sys,$op]} / ${t[local,$op]}:.1f}')"))"
        done
        echo "$row |"
    done
}

mount_bench() {
    local files=$1 big_mib=$2
    [ "$(id -u)" = 0 ] || { echo "remote.sh mount: needs root (drop_caches and mounts)" >&2; exit 1; }
    WORK="$work" BIG_BYTES=$((big_mib * 1048576)) PIN=(taskset -c "${BENCH_CPU:-0}") THREADS=4
    export CASTORE_JAVA_OPTS="-XX:ActiveProcessorCount=2${CASTORE_JAVA_OPTS:+ $CASTORE_JAVA_OPTS}"
    local cold_runs=${BENCH_COLD:-2} warm_runs=${BENCH_WARM:-3}
    local workloads; read -r -a workloads <<<"${BENCH_WORKLOADS:-walk lstat read seq-random pread par4}"
    . bench/lib-mount.sh
    mkdir -p "$work/bin" "$work/corpus/tree" "$work/corpus/big" "$work/mnt"
    mnt="$work/mnt"
    build_clients
    ./castore --version >/dev/null   # build the CLI outside any measurement

    echo "building the corpus: $files files + $big_mib MiB ..." >&2
    build_tree "$files"
    openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 0 </dev/zero 2>/dev/null \
        | head -c "$BIG_BYTES" >"$work/corpus/big/random.bin" || true   # the producers end by SIGPIPE
    (cd "$work/corpus/tree" && find . -mindepth 1 -print0) >"$work/entries.list"
    (cd "$work/corpus/tree" && find . -type f -print0) >"$work/files.list"

    local systems; read -r -a systems <<<"${BENCH_SYSTEMS:-grpc s3}"
    grpc_address= s3_address=
    [[ " ${systems[*]} " == *" s3 "* ]] && start_s3proxy
    [[ " ${systems[*]} " == *" grpc "* ]] && start_daemon
    local sys address
    declare -gA ADDRESS=([local]="$work/local-store" [grpc]="$grpc_address" [s3]="$s3_address")
    for sys in local "${systems[@]}"; do
        echo "importing into $sys ..." >&2
        ./castore import --store "${ADDRESS[$sys]}" --quiet --name tree "$work/corpus/tree" >/dev/null
        ./castore import --store "${ADDRESS[$sys]}" --quiet --name big "$work/corpus/big" >/dev/null
    done

    declare -A result=()
    local w r runs state cache
    for w in "${workloads[@]}"; do
        for sys in "${systems[@]}"; do
            cache="$work/cache-$sys"
            runs=()
            for _ in $(seq "$cold_runs"); do
                rm -rf "$cache"
                remount "${ADDRESS[$sys]}" "$cache"; runs+=("$(measure "$w")")
            done
            result[$w,$sys,cold]=$(best "${runs[@]}")
            echo "$w $sys cold ${runs[*]} $(unit "$w")" >&2
        done
        # Local and warm runs alternate, round by round, so that a slow spell of the shared
        # machine slows one of each rather than all runs of one column; each round starts one
        # system later, so each system runs in each place once in three rounds: in this VM the
        # run right after a local run pays for it (20k warm preads over gRPC, 3 rounds after a
        # local run: 10.9-12.4k/s, system CPU 1.0-1.3 s; after another warm run: 14.1-18.4k/s,
        # 0.6-0.9 s; docs/performance.md, "Remote mount", "Session 36"), and in a fixed order the
        # same remote always ran there.
        declare -A rounds=()
        local order=(local "${systems[@]}") first
        for r in $(seq "$warm_runs"); do
            first=$(((r - 1) % ${#order[@]}))
            for sys in "${order[@]:first}" "${order[@]:0:first}"; do
                if [ "$sys" = local ]; then
                    remount "${ADDRESS[local]}" ""
                else
                    remount "${ADDRESS[$sys]}" "$work/cache-$sys"
                fi
                rounds[$sys]+=" $(measure "$w")"
            done
        done
        read -r -a runs <<<"${rounds[local]}"
        result[$w,local]=$(best "${runs[@]}")
        echo "$w local ${runs[*]} $(unit "$w")" >&2
        for sys in "${systems[@]}"; do
            read -r -a runs <<<"${rounds[$sys]}"
            result[$w,$sys,warm]=$(best "${runs[@]}")
            echo "$w $sys warm ${runs[*]} $(unit "$w")" >&2
        done
        unset rounds
    done
    umount "$mnt"; wait "$MOUNT_PID" 2>/dev/null || true; MOUNT_PID=

    echo
    echo "castore remote mount benchmark, $(date -u +%Y-%m-%d), $(nproc) CPUs, kernel $(uname -r); mount and clients on CPU ${BENCH_CPU:-0},"
    echo "servers unpinned; --threads $THREADS, JVM $CASTORE_JAVA_OPTS; best of $cold_runs cold / $warm_runs local and warm runs, alternated;"
    echo "each mount idle ${BENCH_SETTLE:-0} s before its workload;"
    echo "load average $(cut -d' ' -f1-3 /proc/loadavg); corpus: $(tr -cd '\0' <"$work/entries.list" | wc -c) entries, $(tr -cd '\0' <"$work/files.list" | wc -c) files + $big_mib MiB"
    echo
    echo "| workload | unit | local | grpc cold | grpc warm | s3 cold | s3 warm | grpc cold/local | grpc warm/local | s3 cold/local | s3 warm/local |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for w in "${workloads[@]}"; do
        local l=${result[$w,local]} gc=${result[$w,grpc,cold]:--} gw=${result[$w,grpc,warm]:--} sc=${result[$w,s3,cold]:--} sw=${result[$w,s3,warm]:--}
        echo "| $w | $(unit "$w") | $l | $gc | $gw | $sc | $sw | $(ratio "$gc" "$l") | $(ratio "$gw" "$l") | $(ratio "$sc" "$l") | $(ratio "$sw" "$l") |"
    done
}

case "$mode" in
store)
    start_s3proxy
    echo "castore remote store bench: ${size} MiB random blob, S3Proxy on 127.0.0.1 ($(nproc) cores)"
    "$java" -Xmx2g --enable-native-access=ALL-UNNAMED -cp "$cp" bench/RemoteStoreBench.java \
        "$s3_address" "$work/cache" "$size" 2>&1 | grep -v '^SLF4J'
    ;;
mount)
    mount_bench "${2:-50000}" "${3:-1024}"
    ;;
transfer)
    transfer_bench "${2:-50000}"
    ;;
*)
    echo "usage: bench/remote.sh store [SIZE_MIB] | mount [FILES [BIG_MIB]] | transfer [FILES]" >&2
    exit 2
    ;;
esac
