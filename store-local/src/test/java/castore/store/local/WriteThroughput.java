package castore.store.local;

import castore.hash.Blake3;
import castore.service.BlobWriter;
import castore.service.Store;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Raw write throughput of the local store (a benchmark main, not a test): writes blobs from
 * memory with N threads into a fresh store and reports the time up to a durable close.
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -Xmx4g -cp ... castore.store.local.WriteThroughput DIR small|big [threads] [fsync=true|false] [warm]
 * </pre>
 * With {@code warm}, the workload first runs once into {@code DIR.warmup} (then deleted) so the
 * measured run is JIT-compiled; without it the figure includes a cold JVM, as a CLI run has.
 * small: 52,000 blobs, 448 MB in all (sizes 0 to ~70 KB, skewed small, like a source tree);
 * big: 2 GiB as 8 blobs of 256 MiB. Data is random, generated before the clock starts.
 */
public final class WriteThroughput {
    private WriteThroughput() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        String workload = args[1];
        int threads = args.length > 2 ? Integer.parseInt(args[2]) : 2;
        boolean sync = !(args.length > 3 && args[3].equals("fsync=false"));
        boolean warm = args.length > 4 && args[4].equals("warm");
        if (Files.exists(dir)) {
            throw new IllegalArgumentException(dir + " exists; give a fresh directory");
        }
        List<ByteBuffer> blobs = switch (workload) {
            case "small" -> smallBlobs();
            case "big" -> bigBlobs();
            default -> throw new IllegalArgumentException("workload is small or big");
        };
        long bytes = blobs.stream().mapToLong(ByteBuffer::remaining).sum();
        System.out.printf("%s: %d blobs, %.1f MB, %d threads, fsync %s%n", workload, blobs.size(), bytes / 1e6, threads, sync);

        long hashStart = System.nanoTime();
        for (ByteBuffer b : blobs) {
            Blake3.digest(b.duplicate());
        }
        double hashSeconds = (System.nanoTime() - hashStart) / 1e9;
        System.out.printf("  BLAKE3 alone, 1 thread: %.2f s (%.0f MB/s)%n", hashSeconds, bytes / 1e6 / hashSeconds);

        if (warm) {
            Path warmup = dir.resolveSibling(dir.getFileName() + ".warmup");
            run(warmup, blobs, threads, sync);
            try (var files = Files.walk(warmup)) {
                for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                    Files.delete(p);
                }
            }
        }
        run(dir, blobs, threads, sync);
    }

    private static void run(Path dir, List<ByteBuffer> blobs, int threads, boolean sync) throws Exception {
        long bytes = blobs.stream().mapToLong(ByteBuffer::remaining).sum();
        long[] ticks0 = ticks();
        java.time.Duration cpuBefore = ProcessHandle.current().info().totalCpuDuration().orElseThrow();
        long start = System.nanoTime();
        AtomicLong stored = new AtomicLong();
        long commitStart;
        try (LocalStore local = LocalStore.open(dir, LocalStore.Options.defaults().withSync(sync)); Store store = local.asStore()) {
            AtomicInteger next = new AtomicInteger();
            try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
                List<Future<?>> done = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    done.add(pool.submit(() -> {
                        for (int i; (i = next.getAndIncrement()) < blobs.size(); ) {
                            ByteBuffer data = blobs.get(i).duplicate();
                            try (BlobWriter w = store.blobs().create()) {
                                while (data.hasRemaining()) {
                                    ByteBuffer piece = data.slice(data.position(), Math.min(data.remaining(), 256 * 1024));
                                    w.write(piece);
                                    data.position(data.position() + piece.capacity());
                                }
                                w.finish();
                                stored.addAndGet(w.bytesStored());
                            }
                        }
                        return null;
                    }));
                }
                for (Future<?> f : done) {
                    f.get();
                }
            }
            commitStart = System.nanoTime();
            local.commit();
        }
        long end = System.nanoTime();
        double cpu = ProcessHandle.current().info().totalCpuDuration().orElseThrow().minus(cpuBefore).toNanos() / 1e9;
        double seconds = (end - start) / 1e9;
        System.out.printf("  store write: %.2f s (%.0f MB/s, %.0f blobs/s), of which final commit %.2f s; %.1f MB stored%n",
                seconds, bytes / 1e6 / seconds, blobs.size() / seconds, (end - commitStart) / 1e9, stored.get() / 1e6);
        System.out.printf("  CPU: %.2f s (user+sys, all threads, JIT included)%n", cpu);
        long[] ticks1 = ticks();
        System.out.printf("  of which user %.2f s, system %.2f s%n", (ticks1[0] - ticks0[0]) / 100.0, (ticks1[1] - ticks0[1]) / 100.0);
    }

    /** User and system CPU time of this process, in clock ticks (Linux /proc, 100 per second). */
    static long[] ticks() throws IOException {
        String[] f = Files.readString(Path.of("/proc/self/stat")).split(" ");
        return new long[] {Long.parseLong(f[13]), Long.parseLong(f[14])};
    }

    private static List<ByteBuffer> smallBlobs() {
        SplittableRandom random = new SplittableRandom(52);
        int n = 52_000;
        int[] sizes = new int[n];
        long total = 0;
        for (int i = 0; i < n; i++) {
            // Mostly small files with a long tail, mean about 8.6 KB.
            double u = random.nextDouble();
            sizes[i] = (int) (u < 0.02 ? 0 : Math.min(600_000, -Math.log(1 - u) * 8_600));
            total += sizes[i];
        }
        byte[] all = new byte[(int) total];
        random.nextBytes(all);
        List<ByteBuffer> out = new ArrayList<>(n);
        int at = 0;
        for (int s : sizes) {
            out.add(ByteBuffer.wrap(all, at, s).slice());
            at += s;
        }
        return out;
    }

    private static List<ByteBuffer> bigBlobs() {
        List<ByteBuffer> out = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            byte[] b = new byte[256 << 20];
            new SplittableRandom(i).nextBytes(b);
            out.add(ByteBuffer.wrap(b));
        }
        return out;
    }
}
