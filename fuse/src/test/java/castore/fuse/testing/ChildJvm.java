package castore.fuse.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * A child JVM running a main class from the test classpath, optionally as another uid (setpriv),
 * for tests of what a whole process does: mount as an ordinary user, exit on SIGTERM, die by
 * SIGKILL. The child gets a small heap and fast start-up flags; its stderr is collected.
 */
public final class ChildJvm implements AutoCloseable {
    private final Process process;
    private final BufferedReader stdout;
    private final CompletableFuture<String> stderr;

    private ChildJvm(Process process) {
        this.process = process;
        this.stdout = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        this.stderr = Commands.drain(process.getErrorStream());
    }

    /** Where a class was loaded from (its classes directory or jar), for a child's classpath. */
    public static Path codeSourceOf(Class<?> type) {
        try {
            return Path.of(type.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Starts {@code mainClass} with {@code args}. With {@code uid} non-null the child runs as that
     * uid and gid with no supplementary groups, so every classpath entry must be readable by it.
     */
    public static ChildJvm start(List<Path> classpath, String mainClass, List<String> args, Integer uid)
            throws IOException {
        String java = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        List<String> command = new ArrayList<>();
        if (uid != null) {
            command.addAll(List.of("setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", "--"));
        }
        command.addAll(List.of(java, "-Xmx64m", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", "-Xshare:auto",
                "--enable-native-access=ALL-UNNAMED", "-cp",
                classpath.stream().map(Path::toString).collect(Collectors.joining(":")), mainClass));
        command.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(command);
        if (uid != null) {
            pb.environment().put("HOME", "/tmp");
        }
        return new ChildJvm(pb.start());
    }

    public Process process() {
        return process;
    }

    /** Sends SIGTERM, keeping the child's output readable (Process.destroy would close it). */
    public void terminate() {
        process.toHandle().destroy();
    }

    /** Sends SIGKILL, keeping the child's output readable. */
    public void kill() {
        process.toHandle().destroyForcibly();
    }

    /** The next line the child prints, or null at end of output. */
    public String readLine() throws IOException {
        return stdout.readLine();
    }

    /** Waits (at most a minute) for the child to print a line starting with {@code prefix}. */
    public String awaitLine(String prefix) throws IOException {
        List<String> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        CompletableFuture<String> line = CompletableFuture.supplyAsync(() -> {
            try {
                for (String l; (l = stdout.readLine()) != null; ) {
                    if (l.startsWith(prefix)) {
                        return l;
                    }
                    seen.add(l);
                }
                return null;
            } catch (IOException e) {
                return null;
            }
        }, r -> Thread.ofVirtual().start(r));
        try {
            String l = line.get(60, TimeUnit.SECONDS);
            if (l == null) {
                throw new AssertionError("child ended without printing '" + prefix + "' (exit "
                        + exitCode() + ", printed " + seen + "): " + stderr());
            }
            return l;
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError("child did not print '" + prefix + "' within a minute");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new AssertionError(e);
        }
    }

    /** Waits (at most a minute) for the child to end; its exit code. */
    public int waitFor() throws InterruptedException {
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("child did not exit within a minute: " + stderr());
        }
        return process.exitValue();
    }

    private Object exitCode() {
        try {
            return process.waitFor(5, TimeUnit.SECONDS) ? process.exitValue() : "still running";
        } catch (InterruptedException e) {
            return "?";
        }
    }

    /** Everything the child wrote to stderr (after it ended). */
    public String stderr() {
        try {
            return stderr.get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            return "(stderr not available)";
        }
    }

    @Override
    public void close() {
        process.destroyForcibly();
        try {
            process.waitFor(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
