package castore.hash;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3.Engine;
import castore.hash.Blake3.Implementation;
import castore.model.B3Digest;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/** Incremental hashing in any split equals one-shot hashing, and the engines agree with each other. */
class Blake3IncrementalTest {
    /** Lengths around block, chunk, SIMD-batch (16 chunks) and critical-piece boundaries, and random ones. */
    static int[] lengths() {
        IntStream special = IntStream.of(0, 1, 63, 64, 65, 1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097,
                        16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 17 * 1024 + 5, 33 * 1024, 64 * 1024 + 1,
                        NativeBlake3.CRITICAL_PIECE - 1, NativeBlake3.CRITICAL_PIECE, NativeBlake3.CRITICAL_PIECE + 1,
                        3 * NativeBlake3.CRITICAL_PIECE + 1000);
        IntStream random = new SplittableRandom(7).ints(12, 0, 3 << 20);
        return IntStream.concat(special, random).toArray();
    }

    static Stream<Arguments> implementationsAndLengths() {
        return Stream.of(Implementation.values())
                .flatMap(impl -> IntStream.of(lengths()).mapToObj(n -> Arguments.of(impl, n)));
    }

    @ParameterizedTest(name = "{0} length {1}")
    @MethodSource("implementationsAndLengths")
    void randomSplitsEqualOneShot(Implementation impl, int length) {
        Engine engine = Engines.get(impl);
        SplittableRandom random = new SplittableRandom(length);
        byte[] data = new byte[length];
        random.nextBytes(data);
        B3Digest expected = engine.digest(data, 0, length);

        for (int trial = 0; trial < 3; trial++) {
            Blake3.Hasher h = engine.newHasher();
            int pos = 0;
            while (pos < length) {
                // Mostly small pieces, sometimes big ones, through all three update paths.
                int max = random.nextInt(4) == 0 ? 200_000 : 3000;
                int n = Math.min(length - pos, random.nextInt(max + 1));
                switch (random.nextInt(3)) {
                    case 0 -> h.update(data, pos, n);
                    case 1 -> h.update(MemorySegment.ofArray(data), pos, n);
                    default -> h.update(java.nio.ByteBuffer.wrap(data, pos, n));
                }
                pos += n;
            }
            assertThat(h.digest()).as("trial %d", trial).isEqualTo(expected);
        }
    }

    @ParameterizedTest(name = "length {0}")
    @MethodSource("lengths")
    void nativeAgreesWithJava(int length) {
        Engine nativeEngine = Engines.get(Implementation.NATIVE);
        Engine java = Engines.get(Implementation.JAVA);
        byte[] data = new byte[length];
        new SplittableRandom(~length).nextBytes(data);
        B3Digest expected = java.digest(data, 0, length);
        assertThat(nativeEngine.digest(data, 0, length)).as("byte[]").isEqualTo(expected);
        assertThat(nativeEngine.digest(MemorySegment.ofArray(data))).as("heap segment").isEqualTo(expected);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment off = arena.allocate(Math.max(1, length));
            MemorySegment.copy(data, 0, off, ValueLayout.JAVA_BYTE, 0, length);
            MemorySegment slice = off.asSlice(0, length);
            assertThat(nativeEngine.digest(slice)).as("native segment").isEqualTo(expected);
            assertThat(java.digest(slice)).as("native segment, java").isEqualTo(expected);
            Blake3.Hasher h = nativeEngine.newHasher();
            h.update(slice);
            assertThat(h.digest()).as("native hasher, native segment").isEqualTo(expected);
        }
    }

    @ParameterizedTest
    @EnumSource(Implementation.class)
    void digestMidStreamDoesNotDisturbTheHasher(Implementation impl) {
        Engine engine = Engines.get(impl);
        byte[] data = new byte[10_000];
        new SplittableRandom(3).nextBytes(data);
        Blake3.Hasher h = engine.newHasher();
        h.update(data, 0, 5000);
        assertThat(h.digest()).isEqualTo(engine.digest(data, 0, 5000));
        h.update(data, 5000, 5000);
        assertThat(h.digest()).isEqualTo(engine.digest(data, 0, 10_000));
        h.reset();
        h.update(data, 0, 1);
        assertThat(h.digest()).isEqualTo(engine.digest(data, 0, 1));
    }

    @ParameterizedTest
    @EnumSource(Implementation.class)
    void readOnlySegmentsAreHashedInPlace(Implementation impl) {
        Engine engine = Engines.get(impl);
        byte[] data = Engines.pattern(102_400);
        B3Digest expected = engine.digest(data, 0, data.length);
        assertThat(engine.digest(MemorySegment.ofArray(data).asReadOnly())).isEqualTo(expected);
        Blake3.Hasher h = engine.newHasher();
        h.update(MemorySegment.ofArray(data).asReadOnly(), 0, data.length);
        assertThat(h.digest()).isEqualTo(expected);
    }

    @ParameterizedTest
    @EnumSource(Implementation.class)
    void outOfBoundsRangesAreRejected(Implementation impl) {
        Engine engine = Engines.get(impl);
        byte[] data = new byte[10];
        Blake3.Hasher h = engine.newHasher();
        assertThatThrownBy(() -> h.update(data, 5, 6)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> h.update(data, -1, 2)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> h.update(MemorySegment.ofArray(data), 8, 3)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> engine.digest(data, 9, 2)).isInstanceOf(IndexOutOfBoundsException.class);
        // Nothing was hashed by the failed calls.
        assertThat(h.digest()).isEqualTo(engine.digest(new byte[0], 0, 0));
    }
}
