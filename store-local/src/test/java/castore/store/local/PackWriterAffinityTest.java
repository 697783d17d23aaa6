package castore.store.local;

import static org.assertj.core.api.Assertions.assertThat;

import castore.hash.Blake3;
import castore.model.B3Digest;
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

/** Two threads writing at once each keep their chunks together, in one pack, in order. */
class PackWriterAffinityTest {
    @TempDir
    Path dir;

    @Test
    void twoFilesWrittenAtOnceAreNotInterleavedChunkByChunk() throws Exception {
        StoreLayout layout = StoreLayout.openOrInit(dir);
        PackStore store = new PackStore(layout, false, 1L << 30, 2, true, false);
        int chunks = 200;
        CyclicBarrier lockstep = new CyclicBarrier(2);
        try (ExecutorService writers = Executors.newFixedThreadPool(2)) {
            List<Future<List<Location>>> files = new ArrayList<>();
            for (int t = 0; t < 2; t++) {
                long seed = t;
                files.add(writers.submit(() -> {
                    SplittableRandom random = new SplittableRandom(seed);
                    List<Location> written = new ArrayList<>();
                    for (int i = 0; i < chunks; i++) {
                        byte[] chunk = new byte[64 * 1024];
                        random.nextBytes(chunk);
                        B3Digest digest = Blake3.digest(chunk);
                        lockstep.await(); // both append at the same moment, as two import workers do
                        written.add(store.append(ObjectKind.CHUNK, digest, chunk, 0, chunk.length, 0));
                    }
                    return written;
                }));
            }
            List<Location> first = files.get(0).get();
            List<Location> second = files.get(1).get();
            for (List<Location> file : List.of(first, second)) {
                // The first few appends may still meet the other thread's writer; then each keeps its own.
                List<Location> settled = file.subList(4, chunks);
                assertThat(settled.stream().map(Location::source).distinct()).as("packs of one file").hasSize(1);
                for (int i = 1; i < settled.size(); i++) {
                    assertThat(settled.get(i).offset()).isGreaterThan(settled.get(i - 1).offset());
                }
            }
            assertThat(first.getLast().source()).as("each file in a pack of its own").isNotSameAs(second.getLast().source());
        } finally {
            store.close();
        }
    }
}
