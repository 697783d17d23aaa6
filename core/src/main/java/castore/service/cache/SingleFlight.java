package castore.service.cache;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;

/**
 * Runs one load per key at a time: concurrent callers for a key that is already loading wait
 * for that load instead of starting their own, and all get its result or its failure.
 */
final class SingleFlight<K, V> {
    interface Load<V> {
        V load() throws IOException;
    }

    private final ConcurrentHashMap<K, CompletableFuture<V>> inFlight = new ConcurrentHashMap<>();

    /** A claim given up: its waiters load the key themselves. */
    private static final class Released extends RuntimeException {
        Released() {
            super(null, null, false, false);
        }
    }

    private static final Released RELEASED = new Released();

    V get(K key, Load<V> load) throws IOException {
        CompletableFuture<V> mine = new CompletableFuture<>();
        CompletableFuture<V> running;
        while ((running = inFlight.putIfAbsent(key, mine)) != null) {
            try {
                return await(running);
            } catch (Released released) {
                inFlight.remove(key, running); // then try again: load it here, or wait for a newer load
            }
        }
        try {
            V value = load.load();
            mine.complete(value);
            return value;
        } catch (IOException | RuntimeException | Error e) {
            mine.completeExceptionally(e);
            throw e;
        } finally {
            inFlight.remove(key, mine);
        }
    }

    /**
     * Registers a load of {@code key} that the caller runs elsewhere and ends with
     * {@link #complete}, {@link #fail} or {@link #release}; callers of {@link #get} wait for it meanwhile. Null if a
     * load of the key is running already.
     */
    CompletableFuture<V> claim(K key) {
        CompletableFuture<V> mine = new CompletableFuture<>();
        return inFlight.putIfAbsent(key, mine) == null ? mine : null;
    }

    // Removed before completed: a caller that comes once the claim's waiters are woken must not join it.
    void complete(K key, CompletableFuture<V> claim, V value) {
        inFlight.remove(key, claim);
        claim.complete(value);
    }

    void fail(K key, CompletableFuture<V> claim, Throwable failure) {
        inFlight.remove(key, claim);
        claim.completeExceptionally(failure);
    }

    /** Gives up a claim: whoever waits for it loads the key instead. */
    void release(K key, CompletableFuture<V> claim) {
        inFlight.remove(key, claim);
        claim.completeExceptionally(RELEASED);
    }

    /**
     * Waits for {@code claim}: true once completed, false if it was given up ({@link #release});
     * a failure is thrown as {@link #get} throws it to waiters.
     */
    static boolean awaitClaim(CompletableFuture<?> claim) throws IOException {
        try {
            await(claim);
            return true;
        } catch (Released released) {
            return false;
        }
    }

    boolean isLoading(K key) {
        return inFlight.containsKey(key);
    }

    private static <V> V await(CompletableFuture<V> running) throws IOException {
        try {
            return running.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for a fetch");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof IOException io) {
                throw io; // the same type for every waiter (NotFound, Corrupted, ...)
            }
            if (cause instanceof RuntimeException r) {
                throw r;
            }
            throw new IOException(cause);
        }
    }
}
