package castore.bench;

import castore.hash.Blake3;
import castore.model.B3Digest;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * BLAKE3 throughput on one thread (per core), for both engines. {@link #digest}: inputs up to
 * 64 MiB are heap arrays (small files, buffers), larger ones the first {@code size} bytes of
 * {@code -p file=PATH} mapped once. {@link #openMapDigest}: what an importer does per file,
 * and b3sum per run: open, map, hash, unmap (page-table setup included). MB/s = ops/s x size.
 */
@State(Scope.Thread)
public class Blake3Benchmark extends OneThreadBenchmark {
    @Param({"NATIVE", "JAVA"})
    public Blake3.Implementation impl;

    @Param({"4096", "1048576", "1073741824"})
    public long size;

    /** A file of at least {@code size} bytes (in the page cache); empty: a temporary file of random bytes. */
    @Param({""})
    public String file;

    private Path path;
    private Path temporary;

    private Blake3.Engine engine;
    private Arena arena;
    private byte[] heap;
    private MemorySegment offHeap;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        engine = Blake3.engine(impl).orElseThrow(() -> new IllegalStateException(impl + " BLAKE3 unavailable: " + Blake3.description()));
        if (file.isEmpty()) {
            temporary = BenchData.randomFile(size, size);
            path = temporary;
        } else {
            path = Path.of(file);
        }
        if (size <= 64 << 20) {
            heap = BenchData.heap((int) size, size);
        } else {
            arena = Arena.ofShared();
            offHeap = BenchData.offHeap(arena, size, path.toString(), size);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        if (arena != null) {
            arena.close();
        }
        if (temporary != null) {
            Files.delete(temporary);
        }
    }

    @Benchmark
    public B3Digest digest(CpuTime cpu) {
        cpu.operations++;
        return heap != null ? engine.digest(heap, 0, heap.length) : engine.digest(offHeap);
    }

    @Benchmark
    public B3Digest openMapDigest(CpuTime cpu) throws IOException {
        cpu.operations++;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ); Arena mapping = Arena.ofConfined()) {
            return engine.digest(ch.map(FileChannel.MapMode.READ_ONLY, 0, size, mapping));
        }
    }
}
