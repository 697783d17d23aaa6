package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The launcher's AOT training workload still runs: every command it drives exits as it expects
 * and the FUSE request path answers (a failure here would only cost start-up time, silently).
 */
class AotTrainingTest {
    @TempDir
    Path work;

    @Test
    void trainingRunsEveryStepSuccessfully() throws Exception {
        AotTraining.train(work);
        assertThat(work.resolve("tree/multi-2.bin")).hasSize(5 << 20);
        assertThat(work.resolve("export/tool.sh")).isExecutable();
        assertThat(Files.readAllBytes(work.resolve("export/copy-of-multi-0.bin")))
                .isEqualTo(Files.readAllBytes(work.resolve("tree/multi-0.bin")));
        // The daemon stage: a cat through --cache filled the cache directory.
        try (var cached = Files.walk(work.resolve("cache"))) {
            assertThat(cached.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum())
                    .isGreaterThan(5 << 20);
        }
    }
}
