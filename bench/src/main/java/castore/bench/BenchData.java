package castore.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.SplittableRandom;

/** Benchmark inputs: random bytes on the heap, in native memory, or a file mapped read-only. */
final class BenchData {
    private BenchData() {
    }

    static byte[] heap(int size, long seed) {
        byte[] data = new byte[size];
        new SplittableRandom(seed).nextBytes(data);
        return data;
    }

    /** A temporary file of {@code size} random bytes. */
    static Path randomFile(long size, long seed) throws IOException {
        Path path = Files.createTempFile("castore-bench", ".bin");
        SplittableRandom random = new SplittableRandom(seed);
        byte[] block = new byte[1 << 20];
        try (var out = Files.newOutputStream(path)) {
            for (long written = 0; written < size; written += block.length) {
                random.nextBytes(block);
                out.write(block, 0, (int) Math.min(block.length, size - written));
            }
        }
        return path;
    }

    /** {@code size} bytes of {@code file} mapped if a file is named, else random bytes in native memory. */
    static MemorySegment offHeap(Arena arena, long size, String file, long seed) throws IOException {
        if (file != null && !file.isEmpty()) {
            try (FileChannel ch = FileChannel.open(Path.of(file), StandardOpenOption.READ)) {
                if (ch.size() < size) {
                    throw new IllegalArgumentException(file + " has " + ch.size() + " bytes, need " + size);
                }
                MemorySegment mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
                mapped.load(); // into the page cache, as for b3sum on a warm file
                return mapped;
            }
        }
        MemorySegment segment = arena.allocate(size, 64);
        SplittableRandom random = new SplittableRandom(seed);
        for (long offset = 0; offset + 8 <= size; offset += 8) {
            segment.set(ValueLayout.JAVA_LONG_UNALIGNED, offset, random.nextLong());
        }
        return segment;
    }
}
