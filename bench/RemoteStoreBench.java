import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.BlobWriter;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import castore.service.cache.CacheConfig;
import castore.service.cache.StoreCache;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * Service-level throughput of the S3 backend and the cache in front of it (run by bench/remote.sh
 * with the s3 module's class path): upload, cold and warm sequential reads, random 4 KiB reads.
 * Args: STORE_ADDRESS CACHE_DIR SIZE_MIB.
 */
public class RemoteStoreBench {
    public static void main(String[] args) throws Exception {
        String address = args[0];
        Path cacheDir = Path.of(args[1]);
        int mib = Integer.parseInt(args[2]);
        byte[] data = new byte[mib << 20];
        new SplittableRandom(42).nextBytes(data);

        B3Digest digest;
        try (Store store = Stores.open(address, StoreOptions.DEFAULT)) {
            long t0 = System.nanoTime();
            try (BlobWriter w = store.blobs().create()) {
                for (int off = 0; off < data.length; off += 1 << 20) {
                    w.write(data, off, Math.min(1 << 20, data.length - off));
                }
                digest = w.finish();
            }
            report("upload (chunk, hash, PUT)", data.length, t0);
            t0 = System.nanoTime();
            sequential(store, digest, data.length);
            report("sequential read, no cache", data.length, t0);
        }
        try (Store store = StoreCache.wrap(Stores.open(address, StoreOptions.DEFAULT), CacheConfig.memoryOnly())) {
            long t0 = System.nanoTime();
            sequential(store, digest, data.length);
            report("sequential read, memory cache cold (read-ahead)", data.length, t0);
            t0 = System.nanoTime();
            sequential(store, digest, data.length);
            report("sequential read, memory cache warm", data.length, t0);
        }
        try (Store store = StoreCache.wrap(Stores.open(address, StoreOptions.DEFAULT), CacheConfig.onDisk(cacheDir, 10L << 30))) {
            long t0 = System.nanoTime();
            sequential(store, digest, data.length);
            report("sequential read, disk cache cold", data.length, t0);
        }
        try (Store store = StoreCache.wrap(Stores.open(address, StoreOptions.DEFAULT), CacheConfig.onDisk(cacheDir, 10L << 30))) {
            long t0 = System.nanoTime();
            sequential(store, digest, data.length);
            report("sequential read, disk cache warm (new process state, verify on load)", data.length, t0);
            t0 = System.nanoTime();
            int n = random(store, digest, data.length, 20_000);
            reportOps("random 4 KiB reads, warm", n, t0);
        }
        Files.walk(cacheDir).sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        try (Store store = StoreCache.wrap(Stores.open(address, StoreOptions.DEFAULT), CacheConfig.onDisk(cacheDir, 10L << 30))) {
            long t0 = System.nanoTime();
            int n = random(store, digest, data.length, 2_000);
            reportOps("random 4 KiB reads, cold", n, t0);
        }
    }

    static void sequential(Store store, B3Digest digest, long size) throws Exception {
        try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
            ByteBuffer buf = ByteBuffer.allocate(128 << 10); // a FUSE-sized read
            long pos = 0;
            while (pos < size) {
                buf.clear();
                int n = r.read(pos, buf);
                if (n <= 0) {
                    throw new IllegalStateException("short read at " + pos);
                }
                pos += n;
            }
        }
    }

    static int random(Store store, B3Digest digest, long size, int count) throws Exception {
        SplittableRandom random = new SplittableRandom(7);
        try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
            ByteBuffer buf = ByteBuffer.allocate(4096);
            for (int i = 0; i < count; i++) {
                buf.clear();
                r.read(random.nextLong(size - 4096), buf);
            }
        }
        return count;
    }

    static void report(String what, long bytes, long t0) {
        double s = (System.nanoTime() - t0) / 1e9;
        System.out.printf("%-72s %8.1f MiB/s  (%.2f s)%n", what, bytes / s / (1 << 20), s);
    }

    static void reportOps(String what, int ops, long t0) {
        double s = (System.nanoTime() - t0) / 1e9;
        System.out.printf("%-72s %8.0f ops/s  (%.2f s)%n", what, ops / s, s);
    }
}
