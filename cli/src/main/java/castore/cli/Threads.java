package castore.cli;

/**
 * The {@code --threads} of import, export and verify: platform threads, each with its own stack
 * and buffers, so a count far past the CPUs is refused as a bad command line rather than tried
 * (100000 crashed the JVM once it had started some 30000: ErrorsTest.aThreadCountBeyondWhatAProcessCanStartIsABadCommandLine).
 */
final class Threads {
    static final int MAX = 1024;

    private Threads() {
    }

    /** The default: the CPUs, within {@link #MAX}. */
    static int byDefault() {
        return Math.min(MAX, Runtime.getRuntime().availableProcessors());
    }

    /** Null if {@code threads} is allowed, else what is wrong with it. */
    static String problem(int threads) {
        return problem(threads, MAX);
    }

    /** Null if {@code threads} is 1 to {@code max}, else what is wrong with it (mount's readers have a limit of their own). */
    static String problem(int threads, int max) {
        return threads >= 1 && threads <= max ? null : "--threads must be between 1 and " + max + ", got " + threads;
    }
}
