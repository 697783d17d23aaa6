package castore.bench;

import castore.chunk.FastCdc;
import castore.hash.Blake3;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * FastCDC 2020 with tvix's sizes over 256 MiB of random data on one thread, alone and
 * followed by BLAKE3 of every chunk (the importer's work per byte). MB/s = ops/s x 256 MiB.
 */
@State(Scope.Thread)
public class FastCdcBenchmark extends OneThreadBenchmark {
    static final int SIZE = 256 << 20;

    /** heap: byte[]; native: native memory (as a mapped file). */
    @Param({"heap", "native"})
    public String memory;

    private final FastCdc cdc = FastCdc.TVIX;
    private Arena arena;
    private byte[] heap;
    private MemorySegment offHeap;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        if (memory.equals("heap")) {
            heap = BenchData.heap(SIZE, 42);
        } else {
            arena = Arena.ofShared();
            offHeap = BenchData.offHeap(arena, SIZE, null, 42);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (arena != null) {
            arena.close();
        }
    }

    @Benchmark
    public int chunk(CpuTime cpu) {
        cpu.operations++;
        int chunks = 0;
        for (int offset = 0; offset < SIZE; chunks++) {
            int available = Math.min(cdc.maxSize(), SIZE - offset);
            offset += heap != null ? cdc.cut(heap, offset, available) : cdc.cut(offHeap, offset, available);
        }
        return chunks;
    }

    @Benchmark
    public int chunkAndHash(CpuTime cpu) {
        cpu.operations++;
        int digests = 0;
        for (int offset = 0; offset < SIZE; ) {
            int available = Math.min(cdc.maxSize(), SIZE - offset);
            int n;
            if (heap != null) {
                n = cdc.cut(heap, offset, available);
                digests += Blake3.digest(heap, offset, n).byteAt(0);
            } else {
                n = cdc.cut(offHeap, offset, available);
                digests += Blake3.digest(offHeap, offset, n).byteAt(0);
            }
            offset += n;
        }
        return digests;
    }
}
