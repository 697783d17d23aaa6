package castore.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The castore command in a child JVM: what the ./castore launcher runs (java, native access,
 * castore.cli.Main), on the test class path so that no build is triggered from inside a build.
 */
final class ChildCli {
    private ChildCli() {
    }

    record Result(int exit, String stdout, String stderr) {
    }

    static List<String> command(String... args) {
        List<String> cmd = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Xmx512m", "-XX:TieredStopAtLevel=1",
                "-cp", System.getProperty("java.class.path"), "castore.cli.Main"));
        cmd.addAll(List.of(args));
        return cmd;
    }

    static Process start(List<String> command) throws IOException {
        return start(command, Map.of());
    }

    /** With {@code environment} added to this process's; a key mapped to "" is removed. */
    static Process start(List<String> command, Map<String, String> environment) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().put("LANG", "C.UTF-8");
        environment.forEach((key, value) -> {
            if (value.isEmpty()) {
                pb.environment().remove(key);
            } else {
                pb.environment().put(key, value);
            }
        });
        return pb.start();
    }

    static Result run(List<String> command) throws IOException, InterruptedException {
        return run(command, Map.of());
    }

    static Result run(List<String> command, Map<String, String> environment) throws IOException, InterruptedException {
        Process p = start(command, environment);
        p.getOutputStream().close();
        var out = p.getInputStream().readAllBytes();
        var err = p.getErrorStream().readAllBytes();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("castore did not finish: " + command);
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8), new String(err, StandardCharsets.UTF_8));
    }

    static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }
}
