package castore.cli;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Runs castore in-process on one store, capturing stdout (bytes) and stderr. */
final class Cli {
    private final String store;

    Cli(String store) {
        this.store = store;
    }

    record Result(int exit, byte[] stdoutBytes, String stderr) {
        String stdout() {
            return new String(stdoutBytes, StandardCharsets.UTF_8);
        }

        List<String> lines() {
            String out = stdout();
            return out.isEmpty() ? List.of() : Arrays.asList(out.split("\n"));
        }
    }

    /** {@code castore COMMAND --store STORE ARGS...}. */
    Result run(String command, String... args) {
        List<String> all = new ArrayList<>();
        all.add(command);
        all.add("--store");
        all.add(store);
        all.addAll(Arrays.asList(args));
        return raw(all.toArray(String[]::new));
    }

    /** Exactly these arguments. */
    static Result raw(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = Main.run(Io.of(out, err), args);
        return new Result(exit, out.toByteArray(), err.toString(StandardCharsets.UTF_8));
    }
}
