package castore.cli;

/** Exit codes of the castore command (documented in README.md). */
public final class ExitCodes {
    /** Success. */
    public static final int OK = 0;
    /** The command ran but found problems (verify). */
    public static final int PROBLEMS = 1;
    /** Bad command line (unknown option, missing argument). picocli's own code. */
    public static final int USAGE = 2;
    /** A path, root or object that does not exist. */
    public static final int NOT_FOUND = 3;
    /** Invalid input: bad name, digest, address, special file. */
    public static final int INVALID = 4;
    /** An I/O error: unreadable file, corrupted store, unreachable service. */
    public static final int IO = 5;
    /** A bug: please report it (run with CASTORE_DEBUG=1 for the stack trace). */
    public static final int INTERNAL = 70;

    private ExitCodes() {
    }
}
