package castore.io;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link DirectFile} on a real file (the test directory must be on a file system with O_DIRECT). */
class DirectFileTest {
    @TempDir
    Path tmp;

    @Test
    void readsAlignedRangesExactlyStopsAtTheEndAndSaysMinusOneOnceClosed() throws Exception {
        byte[] data = new byte[3 * DirectStream.ALIGN + 1000];
        new Random(3).nextBytes(data);
        Path file = Files.write(tmp.resolve("f"), data);
        DirectFile direct = new DirectFile(file);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(4L * DirectStream.ALIGN, DirectStream.ALIGN);
            assertThat(direct.read(buffer.asSlice(0, DirectStream.ALIGN), DirectStream.ALIGN)).isEqualTo(DirectStream.ALIGN);
            assertThat(Arrays.equals(buffer.asSlice(0, DirectStream.ALIGN).toArray(ValueLayout.JAVA_BYTE), 0, DirectStream.ALIGN,
                    data, DirectStream.ALIGN, 2 * DirectStream.ALIGN)).isTrue();
            // Past the end: one read, short, and the bytes that are there.
            assertThat(direct.read(buffer.asSlice(0, 2L * DirectStream.ALIGN), 2L * DirectStream.ALIGN))
                    .isEqualTo(DirectStream.ALIGN + 1000);
            assertThat(Arrays.equals(buffer.asSlice(0, DirectStream.ALIGN + 1000).toArray(ValueLayout.JAVA_BYTE),
                    Arrays.copyOfRange(data, 2 * DirectStream.ALIGN, data.length))).isTrue();
            direct.close();
            direct.close();
            assertThat(direct.read(buffer.asSlice(0, DirectStream.ALIGN), 0)).as("closed").isEqualTo(-1);
        }
    }
}
