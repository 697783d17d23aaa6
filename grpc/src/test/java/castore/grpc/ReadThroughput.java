package castore.grpc;

import castore.grpc.server.CastoreServer;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.BlobWriter;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import castore.store.local.LocalStore;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Read throughput of one big blob through the daemon (a benchmark main, not a test): a local store
 * with one random blob, a daemon on loopback TCP (or a Unix socket) in this JVM, and a gRPC client
 * reading the blob sequentially from a fresh reader (cold: nothing fetched yet), {@code runs}
 * times. With {@code drop}, the page cache is dropped before each run (root), so the daemon
 * reads the store from disk too.
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -Xmx2g -cp ... castore.grpc.ReadThroughput DIR [MiB=1024] [tcp|unix] [read KiB=1024] [runs=3] [drop]
 * </pre>
 */
public final class ReadThroughput {
    private ReadThroughput() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        long size = (args.length > 1 ? Long.parseLong(args[1]) : 1024) << 20;
        boolean unix = args.length > 2 && args[2].equals("unix");
        int readSize = (args.length > 3 ? Integer.parseInt(args[3]) : 1024) << 10;
        int runs = args.length > 4 ? Integer.parseInt(args[4]) : 3;
        boolean drop = args.length > 5 && args[5].equals("drop");
        Files.createDirectories(dir);
        System.out.println("BLAKE3: " + Blake3.description());

        try (Store local = LocalStore.open(dir.resolve("store"), LocalStore.Options.defaults()).asStore()) {
            B3Digest digest = writeBlob(local, size);
            ListenAddress address = unix ? new ListenAddress.Unix(dir.resolve("bench.sock")) : new ListenAddress.Tcp("127.0.0.1", 0);
            try (CastoreServer server = CastoreServer.start(local, new CastoreServer.Config(address, true))) {
                String client = switch (server.address()) {
                    case ListenAddress.Tcp tcp -> "grpc+http://" + tcp;
                    case ListenAddress.Unix u -> "grpc+unix://" + u.path();
                };
                System.out.printf("blob %s, %d MiB, %d chunks; client %s, reads of %d KiB%n", digest, size >> 20,
                        local.blobs().chunks(digest).orElseThrow().size(), client, readSize >> 10);
                try (Store remote = Stores.open(client, new StoreOptions(true, Duration.ofSeconds(10), Map.of()))) {
                    for (int run = 1; run <= runs; run++) {
                        if (drop) {
                            Files.writeString(Path.of("/proc/sys/vm/drop_caches"), "3");
                        }
                        long cpuStart = cpuNanos();
                        long start = System.nanoTime();
                        long read = 0;
                        try (BlobReader reader = remote.blobs().open(digest).orElseThrow()) {
                            ByteBuffer buffer = ByteBuffer.allocate(readSize);
                            int n;
                            while ((n = reader.read(read, buffer.clear())) > 0) {
                                read += n;
                            }
                        }
                        double seconds = (System.nanoTime() - start) / 1e9;
                        double cpu = (cpuNanos() - cpuStart) / 1e9;
                        if (read != size) {
                            throw new AssertionError("read " + read + " of " + size);
                        }
                        System.out.printf("run %d: %.2f s, %.0f MB/s, %.2f s CPU (daemon and client)%s%n", run, seconds, size / seconds / 1e6,
                                cpu, drop ? " (page cache dropped)" : "");
                    }
                }
            }
        }
    }

    private static long cpuNanos() {
        return ProcessHandle.current().info().totalCpuDuration().orElseThrow().toNanos();
    }

    private static B3Digest writeBlob(Store store, long size) throws Exception {
        byte[] piece = new byte[1 << 20];
        SplittableRandom random = new SplittableRandom(42);
        try (BlobWriter w = store.blobs().create()) {
            for (long done = 0; done < size; done += piece.length) {
                random.nextBytes(piece);
                w.write(piece, 0, (int) Math.min(piece.length, size - done));
            }
            return w.finish();
        }
    }
}
