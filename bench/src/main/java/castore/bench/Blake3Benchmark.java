package castore.bench;

import castore.hash.Blake3;
import castore.model.B3Digest;
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
 * BLAKE3 throughput on one thread (per core), for both engines. Inputs up to 64 MiB are heap
 * arrays (small files, buffers); larger ones are native memory, or the file given with
 * {@code -p file=PATH} mapped read-only (what the importer hashes, and what b3sum maps).
 * MB/s = ops/s x size.
 */
@State(Scope.Thread)
public class Blake3Benchmark extends OneThreadBenchmark {
    @Param({"NATIVE", "JAVA"})
    public Blake3.Implementation impl;

    @Param({"4096", "1048576", "1073741824"})
    public long size;

    /** A file of at least {@code size} bytes to map for large sizes; empty: random native memory. */
    @Param({""})
    public String file;

    private Blake3.Engine engine;
    private Arena arena;
    private byte[] heap;
    private MemorySegment offHeap;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        engine = Blake3.engine(impl).orElseThrow(() -> new IllegalStateException(impl + " BLAKE3 unavailable: " + Blake3.description()));
        if (size <= 64 << 20) {
            heap = BenchData.heap((int) size, size);
        } else {
            arena = Arena.ofShared();
            offHeap = BenchData.offHeap(arena, size, file, size);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (arena != null) {
            arena.close();
        }
    }

    @Benchmark
    public B3Digest digest() {
        return heap != null ? engine.digest(heap, 0, heap.length) : engine.digest(offHeap);
    }
}
