package castore.service.cache;

import static castore.service.cache.DiskCacheTest.bytes;
import static castore.service.cache.DiskCacheTest.key;
import static org.assertj.core.api.Assertions.assertThat;

import castore.hash.Blake3;
import castore.io.DirectStream;
import castore.model.B3Digest;
import castore.service.CorruptedDataException;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A chunk read back from the disk tier is checked by the CRC32C its record carries, not hashed
 * again; a CRC that does not match sends it to the full check, which keeps intact bytes (a damaged
 * header) and drops damaged ones. Real segment files, edited on disk, appended both ways.
 */
class TieredCacheCrcTest {
    @TempDir
    Path dir;

    /** Chunk semantics (bytes named by their BLAKE3), counting which check each read took. */
    private static final class CountingChunkCodec implements TieredCache.Codec<byte[]> {
        int hashed;
        int byCrc;

        @Override
        public byte[] encode(byte[] value) {
            return value;
        }

        @Override
        public byte[] decodeVerified(B3Digest key, byte[] bytes) throws CorruptedDataException {
            hashed++;
            if (!Blake3.digest(bytes).equals(key)) {
                throw new CorruptedDataException("chunk " + key + " is corrupted");
            }
            return bytes;
        }

        @Override
        public byte[] decodeIntact(B3Digest key, byte[] bytes) {
            byCrc++;
            return bytes;
        }

        @Override
        public long weight(byte[] value) {
            return value.length;
        }
    }

    private Path segment() throws IOException {
        try (Stream<Path> files = Files.list(dir.resolve("segments"))) {
            List<Path> all = files.toList();
            assertThat(all).hasSize(1);
            return all.getFirst();
        }
    }

    private static void flipByte(Path file, long offset) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.seek(offset);
            int b = f.read();
            f.seek(offset);
            f.write(b ^ 0x10);
        }
    }

    /** A chunk tier with no memory: every read goes to the disk tier. */
    private static TieredCache<byte[]> withoutMemory(DiskCache disk, CountingChunkCodec codec) {
        return new TieredCache<>(CachingBlobService.CHUNKS, disk, codec, 0);
    }

    /** A buffer for an O_DIRECT read of {@code length} bytes, rounded out at both ends. */
    private static MemorySegment alignedFor(Arena arena, int length) {
        return arena.allocate(length + 2L * DirectStream.ALIGN, DirectStream.ALIGN);
    }

    /** Writes the chunk under {@code key} through a tier with no memory (every read goes to disk) and returns where its bytes are. */
    private long store(B3Digest key, byte[] chunk, boolean directAppends) throws IOException {
        try (DiskCache disk = new DiskCache(dir, 1L << 30, directAppends)) {
            withoutMemory(disk, new CountingChunkCodec()).put(key, chunk);
            return disk.place(CachingBlobService.CHUNKS, key).offset();
        }
    }

    private long store(byte[] chunk, boolean directAppends) throws IOException {
        return store(key(chunk), chunk, directAppends);
    }

    @ParameterizedTest(name = "direct appends {0}")
    @ValueSource(booleans = {false, true})
    void everyReadPathChecksTheCrcInsteadOfHashing(boolean directAppends) throws IOException {
        byte[] chunk = bytes(200_000, 71);
        // Cached under a key the bytes do not hash to (the tier takes what callers verified on
        // trust): any read path that hashed them would find them corrupted and drop them.
        B3Digest key = key(bytes(100, 70));
        store(key, chunk, directAppends);
        try (DiskCache disk = new DiskCache(dir, 1L << 30, directAppends); Arena arena = Arena.ofConfined()) {
            CountingChunkCodec codec = new CountingChunkCodec();
            TieredCache<byte[]> tier = withoutMemory(disk, codec);
            assertThat(tier.get(key, false)).hasValueSatisfying(v -> assertThat(v).isEqualTo(chunk));
            assertThat(codec.byCrc).isEqualTo(1);

            byte[] dst = new byte[chunk.length];
            assertThat(tier.readFromDiskInto(key, dst, chunk.length)).isTrue();
            assertThat(dst).isEqualTo(chunk);

            MemorySegment buffer = alignedFor(arena, chunk.length);
            MemorySegment read = tier.readFromDiskNative(key, chunk.length, buffer);
            assertThat(read).isNotNull();
            assertThat(read.toArray(ValueLayout.JAVA_BYTE)).isEqualTo(chunk);

            MemorySegment[] payloads = new MemorySegment[1];
            assertThat(tier.readFromDiskNativeSpan(new B3Digest[] {key}, new int[] {chunk.length}, 1, buffer, payloads)).isEqualTo(1);
            assertThat(payloads[0].toArray(ValueLayout.JAVA_BYTE)).isEqualTo(chunk);

            assertThat(codec.hashed).as("no read hashed the chunk").isZero();
            assertThat(tier.corruptedDropped()).isZero();
            assertThat(tier.onDisk(key)).isTrue();
        }
    }

    @ParameterizedTest(name = "direct appends {0}")
    @ValueSource(booleans = {false, true})
    void aDamagedCrcFieldFallsBackToTheDigestAndKeepsIntactBytes(boolean directAppends) throws IOException {
        byte[] chunk = bytes(200_000, 72);
        long offset = store(chunk, directAppends);
        flipByte(segment(), offset - 1); // the last byte of the record's CRC field
        try (DiskCache disk = new DiskCache(dir, 1L << 30, directAppends)) {
            CountingChunkCodec codec = new CountingChunkCodec();
            TieredCache<byte[]> tier = withoutMemory(disk, codec);
            assertThat(tier.get(key(chunk), false)).hasValueSatisfying(v -> assertThat(v).isEqualTo(chunk));
            assertThat(codec.byCrc).isZero();
            assertThat(codec.hashed).isEqualTo(1);
            byte[] dst = new byte[chunk.length];
            assertThat(tier.readFromDiskInto(key(chunk), dst, chunk.length)).as("the digest vouches for it").isTrue();
            assertThat(tier.corruptedDropped()).isZero();
        }
    }

    @ParameterizedTest(name = "direct appends {0}")
    @ValueSource(booleans = {false, true})
    void damagedBytesFailTheCrcAndTheDigestAndAreDropped(boolean directAppends) throws IOException {
        byte[] chunk = bytes(200_000, 73);
        long offset = store(chunk, directAppends);
        flipByte(segment(), offset + 150_000);
        try (DiskCache disk = new DiskCache(dir, 1L << 30, directAppends); Arena arena = Arena.ofConfined()) {
            CountingChunkCodec codec = new CountingChunkCodec();
            TieredCache<byte[]> tier = withoutMemory(disk, codec);
            MemorySegment buffer = alignedFor(arena, chunk.length);
            assertThat(tier.readFromDiskNative(key(chunk), chunk.length, buffer)).isNull();
            assertThat(tier.corruptedDropped()).isEqualTo(1);
            assertThat(tier.onDisk(key(chunk))).as("dropped").isFalse();
            assertThat(tier.get(key(chunk), false)).isEmpty();
        }
    }
}
