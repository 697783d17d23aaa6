package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The error suite on the embedded local store. */
class LocalErrorsTest extends ErrorsTest {
    @Override
    String storeAddress() {
        return tmp.resolve("store").toString();
    }

    @Override
    @Test
    void gcNeedsAStoreThatSupportsIt() {
        Cli.Result r = cli.run("gc");
        assertThat(r.exit()).as(r.stderr()).isZero();
    }

    @Test
    void aRealFullDiskAndARealClosedPipeOnStdout() throws Exception {
        Files.write(tree.resolve("big"), new byte[3 << 20]);
        String store = storeAddress(); // on disk: the child JVM reads it
        assertThat(new Cli(store).run("import", "--quiet", tree.toString()).exit()).isZero();
        List<String> cat = ChildCli.command("cat", "--store", store, "tree/big");

        ProcessBuilder full = new ProcessBuilder(cat).redirectOutput(new java.io.File("/dev/full"));
        Process p = full.start();
        String stderr = new String(p.getErrorStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertThat(p.waitFor()).isEqualTo(ExitCodes.IO);
        assertThat(stderr).isEqualTo("castore: cannot write to standard output: No space left on device\n");

        // The reader closes the pipe before reading anything: every write gets EPIPE (more than
        // the pipe's 64 KiB is written, so at least one write comes after the close).
        Process q = ChildCli.start(cat);
        q.getOutputStream().close();
        q.getInputStream().close();
        stderr = new String(q.getErrorStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertThat(q.waitFor()).isEqualTo(ExitCodes.BROKEN_PIPE);
        assertThat(stderr).isEmpty();
    }
}
