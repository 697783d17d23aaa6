package castore.fuse.testing;

import castore.fuse.api.Attr;
import castore.fuse.api.AttrReply;
import castore.fuse.api.DirectorySink;
import castore.fuse.api.Entry;
import castore.fuse.api.Errno;
import castore.fuse.api.FileSystem;
import castore.fuse.api.FuseException;
import castore.fuse.api.OpenReply;
import castore.fuse.api.Operation;
import castore.fuse.api.Request;
import castore.fuse.api.StatFs;
import castore.fuse.transport.FuseMount;
import castore.fuse.transport.MountOptions;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The transport's own ceiling, with a filesystem that costs nothing: cold LOOKUP+GETATTR rate
 * (stat of distinct names, each a kernel round trip) and sequential READ throughput of a file of
 * zeros (dd through the page cache, dropped first). Not a test; run by hand:
 *
 * <pre>
 * ./mvnw -B -q -pl fuse -am verify -DskipTests
 * java --enable-native-access=ALL-UNNAMED -cp fuse/target/classes:fuse/target/test-classes \
 *     castore.fuse.testing.TransportBench /tmp/bench-mnt [inline|offload] [threads]
 * </pre>
 * {@code -DstatOnly=true} skips the sequential read (and its page-cache drops).
 */
public final class TransportBench {
    private static final int FILES = 200_000;
    private static final int COLD = 10_000;
    private static final long BIG_SIZE = 4L << 30;
    private static final long DIR = 2;
    private static final long BIG = 3;
    private static final long FIRST_FILE = 10;

    private TransportBench() {
    }

    public static void main(String[] args) throws Exception {
        Path mountpoint = Files.createDirectories(Path.of(args[0]));
        boolean offload = args.length > 1 && args[1].equals("offload");
        int threads = args.length > 2 ? Integer.parseInt(args[2]) : 4;
        Synthetic fs = new Synthetic(offload);
        try (FuseMount mount = FuseMount.mount(mountpoint, fs, MountOptions.defaults().withThreads(threads))) {
            System.out.printf("mode %s, %d reader threads%n", offload ? "offload (virtual threads)" : "inline", threads);
            // The first 10k requests meet a fresh JVM (interpreting and compiling, like a cold
            // mount's first `find`); later passes, on other names, run compiled code.
            statRate(mountpoint, 1, 0, COLD, "cold JVM");
            statRate(mountpoint, 1, COLD, FILES / 4, "warming JVM");
            statRate(mountpoint, 1, FILES / 4, FILES / 2, "warm JVM");
            statRate(mountpoint, 4, FILES / 2, FILES, "warm JVM");
            if (!Boolean.getBoolean("statOnly")) {
                readRate(mountpoint);
            }
        }
    }

    private static void statRate(Path mountpoint, int clients, int from, int to, String jvm) throws Exception {
        Path dir = mountpoint.resolve("files");
        long cpu = processCpuNanos();
        long readersCpu = readerThreadsCpuNanos();
        long start = System.nanoTime();
        try (ExecutorService pool = Executors.newFixedThreadPool(clients)) {
            List<Future<?>> done = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                int first = from + c;
                done.add(pool.submit(() -> {
                    for (int i = first; i < to; i += clients) {
                        Files.readAttributes(dir.resolve(name(i)), BasicFileAttributes.class);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        double cpuMicros = (processCpuNanos() - cpu) / 1e3 / (to - from);
        double readerMicros = (readerThreadsCpuNanos() - readersCpu) / 1e3 / (to - from);
        System.out.printf("cold stat, %s, %d client threads: %.0f /s (%d names), %.1f us CPU per stat (client and daemon),"
                + " %.1f us of it on the reader threads%n", jvm, clients, (to - from) / seconds, to - from, cpuMicros, readerMicros);
    }

    private static void readRate(Path mountpoint) throws Exception {
        String ra = System.getProperty("readAheadKb");
        if (ra != null) {
            String dev = Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                    .filter(l -> l.split(" ")[4].equals(mountpoint.toAbsolutePath().toString()))
                    .map(l -> l.split(" ")[2]).findFirst().orElseThrow();
            Files.writeString(Path.of("/sys/class/bdi/" + dev + "/read_ahead_kb"), ra);
            System.out.println("read_ahead_kb of bdi " + dev + " set to " + ra);
        }
        for (int round = 0; round < 2; round++) {
            Commands.run("sh", "-c", "echo 1 > /proc/sys/vm/drop_caches");
            long start = System.nanoTime();
            Commands.run("dd", "if=" + mountpoint.resolve("big"), "of=/dev/null", "bs=1M").assertOk();
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("sequential read (dd bs=1M, cold page cache): %.0f MiB/s%n", (BIG_SIZE >> 20) / seconds);
        }
    }

    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                .getOperatingSystemMXBean()).getProcessCpuTime();
    }

    /** CPU time of the mount's reader threads (decode, dispatch, encode, the syscalls; not the JIT). */
    private static long readerThreadsCpuNanos() {
        var threads = java.lang.management.ManagementFactory.getThreadMXBean();
        long sum = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().contains("-reader-")) {
                sum += Math.max(0, threads.getThreadCpuTime(t.threadId()));
            }
        }
        return sum;
    }

    private static String name(int i) {
        return String.format("f%06d", i);
    }

    /** A root with "files/" (FILES empty files) and "big" (BIG_SIZE zero bytes); no state at all. */
    static final class Synthetic implements FileSystem {
        private static final long FOREVER = Long.MAX_VALUE;
        private final boolean offload;

        Synthetic(boolean offload) {
            this.offload = offload;
        }

        @Override
        public boolean mayBlock(Operation op, long nodeId) {
            return offload;
        }

        private static Attr attr(long node) {
            if (node == ROOT_ID || node == DIR) {
                return Attr.of(node, Attr.S_IFDIR | 0555, 0, 2, 0, 0);
            }
            return Attr.of(node, Attr.S_IFREG | 0444, node == BIG ? BIG_SIZE : 0, 1, 0, 0);
        }

        @Override
        public Entry lookup(Request request, long parent, byte[] name) throws FuseException {
            String n = new String(name, StandardCharsets.US_ASCII);
            long node;
            if (parent == ROOT_ID) {
                node = n.equals("files") ? DIR : n.equals("big") ? BIG : 0;
            } else if (parent == DIR && n.length() == 7 && n.charAt(0) == 'f') {
                node = FIRST_FILE + Integer.parseInt(n, 1, 7, 10);
            } else {
                node = 0;
            }
            if (node == 0) {
                throw new FuseException(Errno.ENOENT);
            }
            return new Entry(node, 0, attr(node), FOREVER, FOREVER);
        }

        @Override
        public void forget(long nodeId, long nlookup) {
        }

        @Override
        public AttrReply getattr(Request request, long nodeId) {
            return new AttrReply(attr(nodeId), FOREVER);
        }

        @Override
        public byte[] readlink(Request request, long nodeId) throws FuseException {
            throw new FuseException(Errno.EINVAL);
        }

        @Override
        public OpenReply open(Request request, long nodeId, int flags) {
            return new OpenReply(0, OpenReply.KEEP_CACHE);
        }

        @Override
        public void read(Request request, long nodeId, long fileHandle, long offset, ByteBuffer dst) {
            long size = attr(nodeId).size();
            int n = (int) Math.max(0, Math.min(dst.remaining(), size - offset));
            for (int i = 0; i < n; i += 8) {
                dst.putLong(i, 0);
            }
            dst.position(n);
        }

        @Override
        public OpenReply opendir(Request request, long nodeId) {
            return new OpenReply(0, OpenReply.KEEP_CACHE | OpenReply.CACHE_DIR);
        }

        @Override
        public void readdir(Request request, long nodeId, long fileHandle, long offset, boolean plus, DirectorySink sink) {
        }

        @Override
        public StatFs statfs(Request request, long nodeId) {
            return new StatFs(0, 0, 0, FILES, 0, 4096, 255, 4096);
        }

        @Override
        public byte[] getxattr(Request request, long nodeId, byte[] name) throws FuseException {
            throw new FuseException(Errno.ENODATA);
        }

        @Override
        public byte[] listxattr(Request request, long nodeId) {
            return new byte[0];
        }
    }
}
