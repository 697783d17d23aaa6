package castore.hash;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import castore.hash.Blake3.Implementation;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Our digests of a file equal those of b3sum (the Rust implementation), the file hashed mapped in memory. */
class B3sumAgreementTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0} bytes")
    @ValueSource(ints = {0, 1, 1025, 3 * 1024 * 1024 + 7})
    void mappedFileDigestEqualsB3sum(int length) throws Exception {
        Path file = dir.resolve("data");
        byte[] data = new byte[length];
        new SplittableRandom(length).nextBytes(data);
        Files.write(file, data);
        String expected = b3sum(file);

        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            MemorySegment mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, length, arena);
            for (Implementation impl : Implementation.values()) {
                var engine = Engines.get(impl);
                assertThat(engine.digest(mapped).toHex()).as("%s digest", impl).isEqualTo(expected);
                Blake3.Hasher h = engine.newHasher();
                h.update(mapped, 0, length);
                assertThat(h.digest().toHex()).as("%s hasher", impl).isEqualTo(expected);
            }
        }
    }

    private static String b3sum(Path file) throws IOException, InterruptedException {
        Process p;
        try {
            p = new ProcessBuilder("b3sum", "--num-threads", "1", "--no-names", file.toString())
                    .redirectErrorStream(true).start();
        } catch (IOException e) {
            if (Engines.CI) {
                fail("b3sum is required under CI (apt-get install b3sum): " + e.getMessage());
            }
            assumeTrue(false, "b3sum not installed");
            throw e;
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as("b3sum: %s", out).isZero();
        return out;
    }
}
