package castore.fuse.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Runs commands in child processes, the safe way to exercise a mount from a test: the child is
 * never one of the daemon's serving threads. A command that hangs (a deadlocked mount) is killed
 * after a minute and fails the test instead of hanging the build.
 */
public final class Commands {
    private static final long TIMEOUT_SECONDS = 60;

    private Commands() {
    }

    /** What a finished command left: exit code and its output. */
    public record Result(int exitCode, String stdout, String stderr) {
        public boolean ok() {
            return exitCode == 0;
        }

        /** This result, or an AssertionError with the command's stderr if it failed. */
        public Result assertOk() {
            if (exitCode != 0) {
                throw new AssertionError("exit code " + exitCode + ": " + stderr.trim());
            }
            return this;
        }
    }

    public static Result run(String... command) {
        return run(List.of(command));
    }

    /** Runs {@code command} as uid/gid {@code id} with no supplementary groups (setpriv). */
    public static Result runAs(int id, String... command) {
        List<String> argv = new ArrayList<>(List.of("setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups", "--"));
        argv.addAll(List.of(command));
        return run(argv);
    }

    public static Result run(List<String> command) {
        try {
            Process p = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.PIPE).start();
            p.getOutputStream().close();
            CompletableFuture<String> out = drain(p.getInputStream());
            CompletableFuture<String> err = drain(p.getErrorStream());
            if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("command did not finish in " + TIMEOUT_SECONDS + " s: " + command);
            }
            return new Result(p.exitValue(), out.join(), err.join());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted running " + command, e);
        }
    }

    static CompletableFuture<String> drain(InputStream in) {
        return CompletableFuture.supplyAsync(() -> {
            try (in) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return "";
            }
        }, r -> Thread.ofVirtual().start(r));
    }
}
