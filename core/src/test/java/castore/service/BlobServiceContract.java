package castore.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3;
import castore.model.B3Digest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * What every {@link BlobService} must do, whatever it stores blobs in. A backend's test extends
 * this class and returns a fresh, empty service from {@link #blobs()} for each test (creating it
 * in a {@code @BeforeEach} and closing it in an {@code @AfterEach}).
 */
public abstract class BlobServiceContract {

    /** The service under test; empty when each test starts. */
    protected abstract BlobService blobs();

    public static byte[] randomBytes(long seed, int length) {
        byte[] b = new byte[length];
        new SplittableRandom(seed).nextBytes(b);
        return b;
    }

    protected B3Digest put(byte[] data) throws IOException {
        try (BlobWriter w = blobs().create()) {
            w.write(data, 0, data.length);
            assertThat(w.size()).isEqualTo(data.length);
            return w.finish();
        }
    }

    protected byte[] readAll(B3Digest digest) throws IOException {
        try (BlobReader r = blobs().open(digest).orElseThrow()) {
            return r.inputStream(0).readAllBytes();
        }
    }

    @Test
    void absentBlobIsNowhere() throws IOException {
        B3Digest absent = Blake3.digest(new byte[] {1, 2, 3});
        assertThat(blobs().has(absent)).isFalse();
        assertThat(blobs().open(absent)).isEmpty();
        assertThat(blobs().chunks(absent)).isEmpty();
    }

    @Test
    void smallBlobRoundTrips() throws IOException {
        byte[] data = "hello, castore\n".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        B3Digest d = put(data);
        assertThat(d).isEqualTo(Blake3.digest(data));
        assertThat(blobs().has(d)).isTrue();
        assertThat(readAll(d)).isEqualTo(data);
        try (BlobReader r = blobs().open(d).orElseThrow()) {
            assertThat(r.size()).isEqualTo(data.length);
        }
    }

    @Test
    void emptyBlobRoundTrips() throws IOException {
        B3Digest d = put(new byte[0]);
        assertThat(d).isEqualTo(Blake3.digest(new byte[0]));
        assertThat(blobs().has(d)).isTrue();
        try (BlobReader r = blobs().open(d).orElseThrow()) {
            assertThat(r.size()).isZero();
            assertThat(r.read(0, ByteBuffer.allocate(10))).isEqualTo(-1);
        }
        assertThat(blobs().chunks(d).orElseThrow().stream().mapToLong(ChunkMeta::size).sum()).isZero();
    }

    @Test
    void digestDoesNotDependOnHowTheDataWasWritten() throws IOException {
        byte[] data = randomBytes(1, 1_500_000);
        B3Digest whole = put(data);
        SplittableRandom random = new SplittableRandom(2);
        B3Digest pieces;
        try (BlobWriter w = blobs().create()) {
            for (int at = 0; at < data.length; ) {
                int n = Math.min(data.length - at, 1 + random.nextInt(70_000));
                w.write(ByteBuffer.wrap(data, at, n));
                at += n;
            }
            pieces = w.finish();
        }
        assertThat(pieces).isEqualTo(whole).isEqualTo(Blake3.digest(data));
        assertThat(readAll(whole)).isEqualTo(data);
    }

    @Test
    void readsAtAnyOffsetReturnExactlyTheRequestedBytes() throws IOException {
        byte[] data = randomBytes(3, 3 * 1024 * 1024 + 123);
        B3Digest d = put(data);
        SplittableRandom random = new SplittableRandom(4);
        try (BlobReader r = blobs().open(d).orElseThrow()) {
            for (int i = 0; i < 200; i++) {
                int offset = random.nextInt(data.length);
                int length = 1 + random.nextInt(i % 2 == 0 ? 5000 : 700_000);
                assertRange(r, data, offset, length);
            }
            assertRange(r, data, 0, data.length);
        }
    }

    /** Reads [offset, offset+length) and checks it against {@code data} (short only at the end). */
    public static void assertRange(BlobReader r, byte[] data, long offset, int length) throws IOException {
        ByteBuffer dst = ByteBuffer.allocate(length);
        int n = r.read(offset, dst);
        int expected = (int) Math.min(length, data.length - offset);
        assertThat(n).as("bytes read at %d", offset).isEqualTo(expected);
        assertThat(Arrays.copyOf(dst.array(), n)).as("bytes at %d", offset)
                .isEqualTo(Arrays.copyOfRange(data, (int) offset, (int) offset + expected));
    }

    @Test
    void readAtOrPastTheEndReturnsMinusOneAndNearTheEndReturnsWhatIsLeft() throws IOException {
        byte[] data = randomBytes(5, 10_000);
        B3Digest d = put(data);
        try (BlobReader r = blobs().open(d).orElseThrow()) {
            assertThat(r.read(data.length, ByteBuffer.allocate(10))).isEqualTo(-1);
            assertThat(r.read(data.length + 5L, ByteBuffer.allocate(10))).isEqualTo(-1);
            assertRange(r, data, data.length - 10, 100);
        }
    }

    @Test
    void chunksCoverTheBlobInOrder() throws IOException {
        byte[] data = randomBytes(6, 2 * 1024 * 1024 + 7);
        B3Digest d = put(data);
        List<ChunkMeta> chunks = blobs().chunks(d).orElseThrow();
        long at = 0;
        for (ChunkMeta c : chunks) {
            assertThat(c.size()).isPositive();
            assertThat(c.digest()).isEqualTo(Blake3.digest(data, (int) at, (int) c.size()));
            at += c.size();
        }
        assertThat(at).isEqualTo(data.length);
        if (chunks.size() == 1) {
            assertThat(chunks.getFirst().digest()).isEqualTo(d);
        }
    }

    @Test
    void smallBlobIsOneChunkNamedByTheBlobDigest() throws IOException {
        byte[] data = randomBytes(7, 1000);
        B3Digest d = put(data);
        assertThat(blobs().chunks(d).orElseThrow()).containsExactly(new ChunkMeta(d, 1000));
    }

    @Test
    void sameContentTwiceIsStoredOnce() throws IOException {
        byte[] data = randomBytes(8, 600_000);
        B3Digest first = put(data);
        try (BlobWriter w = blobs().create()) {
            w.write(data, 0, data.length);
            assertThat(w.finish()).isEqualTo(first);
            assertThat(w.bytesStored()).isZero();
        }
        assertThat(readAll(first)).isEqualTo(data);
    }

    @Test
    void writerClosedWithoutFinishStoresNoBlob() throws IOException {
        byte[] data = randomBytes(9, 1_500_000);
        try (BlobWriter w = blobs().create()) {
            w.write(data, 0, data.length);
        }
        assertThat(blobs().has(Blake3.digest(data))).isFalse();
    }

    @Test
    void finishTwiceGivesTheSameDigestAndWritingAfterFinishFails() throws IOException {
        try (BlobWriter w = blobs().create()) {
            w.write(new byte[] {1, 2, 3}, 0, 3);
            B3Digest d = w.finish();
            assertThat(w.finish()).isEqualTo(d);
            assertThatThrownBy(() -> w.write(new byte[] {4}, 0, 1)).isInstanceOf(IOException.class);
        }
    }

    @Test
    void streamsReadFromAnyPosition() throws IOException {
        byte[] data = randomBytes(10, 700_000);
        B3Digest d = put(data);
        try (BlobReader r = blobs().open(d).orElseThrow()) {
            assertThat(r.inputStream(300_001).readAllBytes()).isEqualTo(Arrays.copyOfRange(data, 300_001, data.length));
        }
    }

    @Test
    void concurrentReadsOnOneReaderAllSeeTheRightBytes() throws Exception {
        byte[] data = randomBytes(11, 2 * 1024 * 1024 + 999);
        B3Digest d = put(data);
        try (BlobReader r = blobs().open(d).orElseThrow(); ExecutorService pool = Executors.newFixedThreadPool(8)) {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                long seed = t;
                done.add(pool.submit((Callable<Void>) () -> {
                    SplittableRandom random = new SplittableRandom(seed);
                    for (int i = 0; i < 60; i++) {
                        assertRange(r, data, random.nextInt(data.length), 1 + random.nextInt(300_000));
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
        }
    }

    @Test
    void concurrentWritersEachGetTheirBlob() throws Exception {
        byte[] shared = randomBytes(12, 800_000);
        try (ExecutorService pool = Executors.newFixedThreadPool(8)) {
            List<Future<B3Digest>> own = new ArrayList<>();
            List<Future<B3Digest>> same = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                byte[] mine = randomBytes(100 + t, 50_000 + 100_000 * t);
                own.add(pool.submit(() -> put(mine)));
                same.add(pool.submit(() -> put(shared)));
            }
            for (int t = 0; t < 8; t++) {
                assertThat(readAll(own.get(t).get())).isEqualTo(randomBytes(100 + t, 50_000 + 100_000 * t));
                assertThat(same.get(t).get()).isEqualTo(Blake3.digest(shared));
            }
        }
        assertThat(readAll(Blake3.digest(shared))).isEqualTo(shared);
    }

    @Test
    void readChunkGivesExactlyTheBytesOfAChunkOrOfAWholeBlob() throws IOException {
        byte[] small = randomBytes(31, 5000);
        B3Digest smallDigest = put(small);
        byte[] large = randomBytes(32, 1_300_000);
        B3Digest largeDigest = put(large);
        assertThat(blobs().readChunk(new ChunkMeta(smallDigest, small.length))).hasValueSatisfying(b -> assertThat(b).isEqualTo(small));
        assertThat(blobs().readChunk(new ChunkMeta(largeDigest, large.length))).hasValueSatisfying(b -> assertThat(b).isEqualTo(large));
        for (ChunkMeta chunk : blobs().chunks(largeDigest).orElseThrow()) {
            // Empty is allowed (a service that cannot serve chunks by digest); bytes must be the chunk's.
            blobs().readChunk(chunk).ifPresent(b -> assertThat(Blake3.digest(b)).isEqualTo(chunk.digest()));
        }
        assertThatThrownBy(() -> blobs().readChunk(new ChunkMeta(smallDigest, small.length - 1)))
                .isInstanceOf(CorruptedDataException.class);
        assertThat(blobs().readChunk(new ChunkMeta(Blake3.digest(new byte[] {42}), 1))).isEmpty();
    }
}
