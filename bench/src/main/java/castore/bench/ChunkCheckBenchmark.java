package castore.bench;

import castore.hash.Blake3;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.zip.CRC32C;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * What checking one chunk read from disk costs: BLAKE3 of it (the digest) against CRC32C of it
 * (what the local store and the cache's disk tier record since session 18), one thread. Each
 * operation checks the next {@code chunk} bytes of a 1 GiB native region, as a cold read meets
 * chunks fresh from the disk, not in the CPU's caches. MB/s = ops/s x chunk.
 *
 * <pre>
 * ./mvnw -B -q -pl bench -am package -DskipTests
 * java -cp bench/target/classes:$(cat bench/target/classpath.txt) org.openjdk.jmh.Main ChunkCheckBenchmark
 * </pre>
 */
@State(Scope.Thread)
public class ChunkCheckBenchmark extends OneThreadBenchmark {
    private static final long REGION = 1L << 30;

    /** tvix's FastCDC average chunk, and its maximum. */
    @Param({"262144", "524288"})
    public int chunk;

    private Arena arena;
    private MemorySegment region;
    private long next;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        arena = Arena.ofShared();
        region = BenchData.offHeap(arena, REGION, null, 18);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    private MemorySegment nextChunk() {
        if (next + chunk > REGION) {
            next = 0;
        }
        MemorySegment slice = region.asSlice(next, chunk);
        next += chunk;
        return slice;
    }

    @Benchmark
    public Object blake3(CpuTime cpu) {
        cpu.operations++;
        return Blake3.digest(nextChunk());
    }

    @Benchmark
    public long crc32c(CpuTime cpu) {
        cpu.operations++;
        CRC32C crc = new CRC32C();
        crc.update(nextChunk().asByteBuffer());
        return crc.getValue();
    }
}
