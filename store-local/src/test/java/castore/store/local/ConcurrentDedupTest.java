package castore.store.local;

import static org.assertj.core.api.Assertions.assertThat;

import castore.model.B3Digest;
import castore.service.BlobWriter;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Threads storing the same new content at the same moment store it once. */
class ConcurrentDedupTest {
    @TempDir
    Path dir;

    @Test
    void identicalBlobsWrittenConcurrentlyAreStoredOnce() throws Exception {
        byte[] data = new byte[3 * 1024 * 1024]; // several chunks
        new SplittableRandom(7).nextBytes(data);
        int threads = 8;
        try (Store store = Stores.open(dir.toString(), StoreOptions.DEFAULT);
                ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            for (int round = 0; round < 5; round++) {
                data[0] = (byte) round; // new content each round
                CyclicBarrier start = new CyclicBarrier(threads);
                List<Future<long[]>> results = new ArrayList<>();
                List<B3Digest> digests = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    results.add(pool.submit(() -> {
                        try (BlobWriter w = store.blobs().create()) {
                            start.await();
                            w.write(data, 0, data.length);
                            B3Digest d = w.finish();
                            synchronized (digests) {
                                digests.add(d);
                            }
                            return new long[] {w.bytesStored()};
                        }
                    }));
                }
                long stored = 0;
                for (Future<long[]> f : results) {
                    stored += f.get()[0];
                }
                assertThat(digests).hasSize(threads).containsOnly(digests.getFirst());
                // Only the first chunk changes between rounds; round 0 stores everything once.
                if (round == 0) {
                    assertThat(stored).isEqualTo(data.length);
                } else {
                    assertThat(stored).isLessThan(data.length).isPositive();
                }
            }
        }
    }
}
