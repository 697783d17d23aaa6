package castore.fs;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * Reports a missing or corrupted object once (keyed by its digest), so a tree with one bad blob
 * read by many processes does not flood the log; the operations keep failing with EIO.
 */
final class ProblemLog {
    private final Set<Object> reported = ConcurrentHashMap.newKeySet();
    private final Consumer<String> sink;

    ProblemLog(Consumer<String> sink) {
        this.sink = sink;
    }

    void report(Object key, String line) {
        if (reported.add(key)) {
            sink.accept(line);
        }
    }
}
