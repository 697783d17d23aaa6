package castore.service;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;

/**
 * A question asked of many items at once, up to a bound in flight, on virtual threads: a remote
 * store's lookups are round trips, and one after another each waits for the last.
 */
public final class ParallelLookups {
    /** A lookup that may fail with an I/O error. */
    @FunctionalInterface
    public interface Lookup<T, R> {
        R apply(T item) throws IOException;
    }

    private ParallelLookups() {
    }

    /**
     * {@code lookup} of every item, at most {@code inFlight} at once; the answers in the items'
     * order. The first failure is thrown and the lookups not yet done are cancelled; {@code what}
     * names the work in the message of an interruption ("interrupted while " + what).
     */
    public static <T, R> List<R> map(List<T> items, int inFlight, Lookup<T, R> lookup, String what) throws IOException {
        Semaphore slots = new Semaphore(inFlight);
        List<Future<R>> asked = new ArrayList<>(items.size());
        try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor()) {
            try {
                for (T item : items) {
                    slots.acquire();
                    asked.add(executor.submit(() -> {
                        try {
                            return lookup.apply(item);
                        } finally {
                            slots.release();
                        }
                    }));
                }
                List<R> answers = new ArrayList<>(items.size());
                for (Future<R> answer : asked) {
                    answers.add(answer.get());
                }
                return answers;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while " + what);
            } catch (ExecutionException e) {
                throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
            } finally {
                asked.forEach(f -> f.cancel(true)); // after a failure, the rest are not wanted
            }
        }
    }
}
