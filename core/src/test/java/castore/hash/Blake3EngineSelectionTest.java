package castore.hash;

import static org.assertj.core.api.Assertions.assertThat;

import castore.hash.Blake3.Implementation;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** How the engine is chosen and how the native library is put on disk. */
class Blake3EngineSelectionTest {
    @TempDir
    Path dir;

    @Test
    void defaultEngineIsNativeWhenAvailable() {
        // The surefire JVM runs without CASTORE_BLAKE3, so the choice is automatic.
        String setting = System.getenv("CASTORE_BLAKE3");
        if (setting == null || setting.equals("auto")) {
            Implementation expected = Blake3.engine(Implementation.NATIVE).isPresent() ? Implementation.NATIVE : Implementation.JAVA;
            assertThat(Blake3.implementation()).isEqualTo(expected);
        }
        assertThat(Blake3.description()).startsWith(Blake3.implementation().name().toLowerCase());
    }

    @Test
    void nativeEngineIsAvailableUnderCi() {
        if (Engines.CI) {
            assertThat(Blake3.nativeProblem()).as("native BLAKE3 problem").isNull();
            assertThat(Blake3.description()).contains("BLAKE3 C", "SIMD");
        }
        assertThat(Blake3.engine(Implementation.JAVA)).isPresent();
    }

    @Test
    void environmentChoosesTheEngine() throws Exception {
        String empty = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
        assertThat(runWith("java")).containsExactly("java (chosen by CASTORE_BLAKE3)", empty);
        assertThat(runWith("fast")).containsExactly(
                "unusable: CASTORE_BLAKE3 must be auto, java or native, not 'fast'",
                "error: CASTORE_BLAKE3 must be auto, java or native, not 'fast'");
        if (Blake3.engine(Implementation.NATIVE).isPresent()) {
            assertThat(runWith("native").getFirst()).startsWith("native (BLAKE3 C ");
            assertThat(runWith("native").get(1)).isEqualTo(empty);
        }
    }

    private static List<String> runWith(String setting) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                PrintBlake3Engine.class.getName());
        pb.environment().put("CASTORE_BLAKE3", setting);
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(out).isZero();
        return out.lines().toList();
    }

    @Test
    void extractionReusesAnIdenticalFileAndReplacesADamagedOne() throws IOException {
        byte[] library = "not really a library".getBytes();
        Path first = NativeBlake3.extract(library, List.of(dir));
        assertThat(first.getParent()).isEqualTo(dir);
        assertThat(first.getFileName().toString()).matches("libcastore_blake3-[0-9a-f]{16}\\.so");
        assertThat(Files.readAllBytes(first)).isEqualTo(library);
        long modified = Files.getLastModifiedTime(first).toMillis();

        assertThat(NativeBlake3.extract(library, List.of(dir))).isEqualTo(first);
        assertThat(Files.getLastModifiedTime(first).toMillis()).isEqualTo(modified);

        Files.write(first, "damaged".getBytes());
        assertThat(NativeBlake3.extract(library, List.of(dir))).isEqualTo(first);
        assertThat(Files.readAllBytes(first)).isEqualTo(library);
        // No temporary files left behind.
        try (var files = Files.list(dir)) {
            assertThat(files).containsExactly(first);
        }
    }

    @Test
    void differentLibrariesGetDifferentNames() throws IOException {
        Path a = NativeBlake3.extract("version a".getBytes(), List.of(dir));
        Path b = NativeBlake3.extract("version b".getBytes(), List.of(dir));
        assertThat(a).isNotEqualTo(b);
        assertThat(Files.readString(a)).isEqualTo("version a");
    }

    @Test
    void unusableDirectoriesFallBackToTheNextOrATemporaryFile() throws IOException {
        Path notADirectory = Files.writeString(dir.resolve("file"), "x");
        Path good = dir.resolve("cache");
        Path chosen = NativeBlake3.extract("lib".getBytes(), List.of(notADirectory.resolve("sub"), good));
        assertThat(chosen.getParent()).isEqualTo(good);

        Path temporary = NativeBlake3.extract("lib".getBytes(), List.of(notADirectory.resolve("sub")));
        assertThat(Files.readString(temporary)).isEqualTo("lib");
        Files.delete(temporary);
    }
}
