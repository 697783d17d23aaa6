package castore.cli;

/** Exit codes of the castore command (documented in docs/cli.md and README.md). */
public final class ExitCodes {
    /** Success. */
    public static final int OK = 0;
    /** The command ran but found problems (verify). */
    public static final int PROBLEMS = 1;
    /** Bad command line (unknown option, missing argument, bad option value). */
    public static final int USAGE = 2;
    /** A path, root, directory or blob that does not exist. */
    public static final int NOT_FOUND = 3;
    /** Invalid input: bad name, digest, address, special file, destination that exists, wrong kind of node. */
    public static final int INVALID = 4;
    /** An I/O error: unreadable file, corrupted data, a store that cannot be opened, unreachable service. */
    public static final int IO = 5;
    /** Busy: gc while an import (or another gc) holds the store (try again later), or a mountpoint another castore mount serves. */
    public static final int BUSY = 6;
    /** Stdout's reader went away (a closed pipe): nothing is printed; the status of a process killed by SIGPIPE. */
    public static final int BROKEN_PIPE = 141;
    /** A bug: please report it (run with CASTORE_DEBUG=1 for the stack trace). */
    public static final int INTERNAL = 70;

    private ExitCodes() {
    }
}
