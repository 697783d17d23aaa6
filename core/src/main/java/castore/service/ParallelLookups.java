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
    public interface Lookup<T> {
        boolean test(T item) throws IOException;
    }

    private ParallelLookups() {
    }

    /**
     * {@code lookup} of every item, at most {@code inFlight} at once; the answers in the items'
     * order. The first failure is thrown and the lookups not yet done are cancelled; {@code what}
     * names the question in the message of an interruption.
     */
    public static <T> boolean[] each(List<T> items, int inFlight, Lookup<T> lookup, String what) throws IOException {
        boolean[] answers = new boolean[items.size()];
        Semaphore slots = new Semaphore(inFlight);
        List<Future<Boolean>> asked = new ArrayList<>(items.size());
        try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor()) {
            try {
                for (T item : items) {
                    slots.acquire();
                    asked.add(executor.submit(() -> {
                        try {
                            return lookup.test(item);
                        } finally {
                            slots.release();
                        }
                    }));
                }
                for (int i = 0; i < answers.length; i++) {
                    answers[i] = asked.get(i).get();
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
