package castore.fs;

import castore.model.Name;
import castore.model.Node;
import castore.service.RootService;
import java.io.IOException;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;

/**
 * The root catalog's answers the mount has given the kernel, kept fresh off the request path.
 *
 * <p>A name in the mount root is valid for the root TTL, after which the kernel asks again, and
 * over a remote store every such lookup waited for a round trip (0.5-13 ms over loopback in a
 * fresh mount, tens of ms to an object store): once per TTL on every root in use, in the middle
 * of whatever walk or build needed it. Here an answer is kept with the time its request was
 * sent; a lookup less than a TTL after that is answered from memory, valid for what is left of
 * the TTL, so the kernel never holds a name longer than the TTL after the catalog was asked for
 * it (what asking on every lookup guaranteed). A background thread asks again, on virtual
 * threads (a few at a time, so one slow answer holds up no other), for every name looked up in
 * the last {@link #ACTIVE_TTLS} TTLs whose answer is half a TTL old; a name gone from the
 * catalog is dropped, a re-pointed one replaced, and an answer only ever replaced by one asked
 * for later. Names unused for longer are no longer asked for (the kernel asks again at least
 * once per TTL while a name is in use), and the thread ends when no name is in use. Names the
 * catalog does not have are not kept (the kernel caches those itself).
 *
 * <p>When the catalog cannot be asked (a daemon or object store gone, a network down), each name
 * it answered before keeps its last answer, handed out for a TTL at a time, until it answers
 * again: a mount over a remote store with {@code --cache} goes on serving what it has, as
 * CernVM-FS keeps its last catalog, instead of failing every path through a root once its entry
 * is a TTL old. While it fails, such lookups do not wait for it (each ask could take the
 * store's timeout); the background asks find out when it is back. A name never answered in this
 * mount gets the answer the catalog keeps beyond it, if any ({@link RootService#lastKnown}: a
 * cache directory keeps them across mounts), and otherwise fails with the catalog's error. The
 * last answers of names out of use are kept too, up to {@link #MAX_KEPT} names.
 *
 * <p>TTLs under {@link #MIN_TTL_NANOS} keep nothing: every lookup asks the catalog, as before.
 */
final class RootAnswers implements AutoCloseable {
    /** Below this TTL nothing is kept: refreshing every half TTL would ask the catalog too often. */
    static final long MIN_TTL_NANOS = TimeUnit.MILLISECONDS.toNanos(200);
    /** Names looked up within this many TTLs are refreshed; older ones are dropped. */
    static final int ACTIVE_TTLS = 4;
    /** Refreshes under way at once. */
    static final int PARALLEL_REFRESHES = 8;
    /** The refresher looks at least this often, however long the TTL. */
    private static final long MAX_TICK_NANOS = TimeUnit.MINUTES.toNanos(1);
    /** Names whose last answer is kept; past it, names out of use are dropped. */
    static final int MAX_KEPT = 1 << 16;

    /** An answer of the catalog and when it was asked for. */
    record Answer(Node node, long askedAt) {
    }

    private static final class Kept {
        volatile Answer answer;
        volatile long lastUsed;
        final AtomicBoolean refreshing = new AtomicBoolean();

        Kept(Answer answer) {
            this.answer = answer;
        }

        /** Takes {@code newer} unless the kept answer was asked for later. */
        synchronized void offer(Answer newer) {
            if (newer.askedAt() - answer.askedAt() > 0) {
                answer = newer;
            }
        }
    }

    private final RootService roots;
    private final Consumer<String> log;
    private final long ttlNanos;
    private final long activeNanos;
    private final Map<Name, Kept> kept = new ConcurrentHashMap<>();
    private final Semaphore refreshes = new Semaphore(PARALLEL_REFRESHES);
    private final Object lifecycle = new Object();
    private Thread refresher;
    private volatile boolean closed;
    /** Whether the catalog failed the last time it was asked. */
    private final AtomicBoolean failing = new AtomicBoolean();

    RootAnswers(RootService roots, long ttlNanos) {
        this(roots, ttlNanos, line -> { });
    }

    /** {@code log} hears when the catalog starts failing and when it answers again. */
    RootAnswers(RootService roots, long ttlNanos, Consumer<String> log) {
        this.roots = roots;
        this.log = log;
        this.ttlNanos = ttlNanos;
        this.activeNanos = ttlNanos > Long.MAX_VALUE / ACTIVE_TTLS ? Long.MAX_VALUE : ttlNanos * ACTIVE_TTLS;
    }

    /** Whether answers are kept at all (not for a TTL under {@link #MIN_TTL_NANOS}). */
    boolean enabled() {
        return ttlNanos >= MIN_TTL_NANOS;
    }

    /** The kept answer for {@code name} if it was asked for less than a TTL before {@code now}; null otherwise. */
    Answer fresh(Name name, long now) {
        Kept k = kept.get(name);
        if (k == null) {
            return null;
        }
        Answer a = k.answer;
        if (now - a.askedAt() >= ttlNanos) {
            return null;
        }
        k.lastUsed = now;
        return a;
    }

    /**
     * The last answer kept for {@code name}, however old, if the catalog failed the last time it
     * was asked; null otherwise or if none is kept. The name counts as in use, so it is asked for
     * in the background until the catalog answers.
     */
    Answer lastKnownWhileFailing(Name name, long now) {
        if (!failing.get() || closed) {
            return null;
        }
        Kept k = kept.get(name);
        if (k == null) {
            // None in this mount: the one the catalog keeps beyond it (a cache directory), if any.
            // Stale from the start: handed out only while the catalog fails, replaced once it answers.
            Optional<Node> elsewhere = roots.lastKnown(name);
            if (elsewhere.isEmpty()) {
                return null;
            }
            k = kept.computeIfAbsent(name, n -> new Kept(new Answer(elsewhere.get(), now - ttlNanos)));
        }
        k.lastUsed = now;
        startRefresher();
        return k.answer;
    }

    /**
     * Notes that asking the catalog for {@code name} failed with {@code error} and returns the
     * last answer kept for it, however old, or null if none is kept: here, or where the catalog
     * keeps its answers beyond this mount ({@link RootService#lastKnown}, a cache directory).
     */
    Answer failed(Name name, long now, Exception error) {
        failedWith(error);
        return lastKnownWhileFailing(name, now);
    }

    /**
     * Takes the catalog for failing before anyone asked it (the store did not answer the mount's
     * first questions), so that the first lookups get the last answers kept beyond this mount at
     * once instead of each waiting for the catalog's timeout; the first answer it gives ends
     * that (and is said: "the root catalog answers again"). Says nothing now: the caller has said
     * the store does not answer.
     */
    void presumeFailing() {
        if (enabled() && !closed) {
            failing.set(true);
        }
    }

    /** Whether the catalog failed the last time it was asked (for tests). */
    boolean failing() {
        return failing.get();
    }

    private void failedWith(Exception error) {
        if (enabled() && !closed && failing.compareAndSet(false, true)) {
            log.accept("the root catalog cannot be asked (" + error.getMessage() + "); root names it answered before keep"
                    + " their last answer until it answers again");
        }
    }

    private void answered() {
        if (failing.compareAndSet(true, false) && !closed) {
            log.accept("the root catalog answers again");
        }
    }

    /** How long an answer asked for at {@code askedAt} stays valid from {@code now} (0 once expired). */
    long remainingNanos(long askedAt, long now) {
        return Math.max(0, ttlNanos - (now - askedAt));
    }

    /** Keeps the catalog's answer for {@code name}, asked for at {@code askedAt}; empty: drops the name. */
    void record(Name name, Optional<Node> node, long askedAt) {
        if (!enabled() || closed) {
            return;
        }
        answered();
        if (node.isEmpty()) {
            kept.remove(name);
            return;
        }
        Answer answer = new Answer(node.get(), askedAt);
        if (kept.size() >= MAX_KEPT && !kept.containsKey(name)) {
            dropUnused(System.nanoTime());
        }
        Kept k = kept.computeIfAbsent(name, n -> new Kept(answer));
        k.offer(answer);
        k.lastUsed = System.nanoTime();
        startRefresher();
    }

    /** Names kept (for tests). */
    int size() {
        return kept.size();
    }

    /** Refreshes started and not finished (each holds a permit from before its thread starts): for tests. */
    int refreshesInFlight() {
        return PARALLEL_REFRESHES - refreshes.availablePermits();
    }

    /** Whether the refresher thread is running (for tests). */
    boolean refreshing() {
        synchronized (lifecycle) {
            return refresher != null && refresher.isAlive();
        }
    }

    private void startRefresher() {
        synchronized (lifecycle) {
            if (!closed && (refresher == null || !refresher.isAlive())) {
                refresher = Thread.ofPlatform().name("castore-root-refresh").daemon(true).start(this::refreshLoop);
            }
        }
    }

    /** Runs while names are in use: once none is, the thread ends until one is again. */
    private void refreshLoop() {
        long tick = Math.min(ttlNanos / 4, MAX_TICK_NANOS);
        try {
            while (true) {
                LockSupport.parkNanos(tick);
                if (closed || Thread.interrupted()) {
                    return;
                }
                refreshDue();
                synchronized (lifecycle) {
                    // Decided and given up under the lock that names put in use start a refresher with.
                    if (closed || !anyInUse(System.nanoTime())) {
                        if (refresher == Thread.currentThread()) {
                            refresher = null;
                        }
                        return;
                    }
                }
            }
        } finally {
            synchronized (lifecycle) {
                if (refresher == Thread.currentThread()) {
                    refresher = null;
                }
            }
        }
    }

    private boolean inUse(Kept k, long now) {
        return now - k.lastUsed <= activeNanos;
    }

    private boolean anyInUse(long now) {
        for (Kept k : kept.values()) {
            if (inUse(k, now)) {
                return true;
            }
        }
        return false;
    }

    private void dropUnused(long now) {
        kept.values().removeIf(k -> !inUse(k, now));
    }

    /** Asks again for the names in use whose answer is half a TTL old. */
    private void refreshDue() {
        long now = System.nanoTime();
        for (var e : kept.entrySet()) {
            Name name = e.getKey();
            Kept k = e.getValue();
            if (inUse(k, now) && now - k.answer.askedAt() >= ttlNanos / 2 && !closed && refreshes.tryAcquire()) {
                if (k.refreshing.compareAndSet(false, true)) {
                    Thread.ofVirtual().name("castore-root-refresh").start(() -> refresh(name, k));
                } else {
                    refreshes.release();
                }
            }
        }
    }

    private void refresh(Name name, Kept k) {
        try {
            long askedAt = System.nanoTime();
            Optional<Node> node = roots.get(name);
            if (closed) {
                return;
            }
            answered();
            if (node.isEmpty()) {
                kept.remove(name, k);
            } else {
                k.offer(new Answer(node.get(), askedAt));
            }
        } catch (IOException | RuntimeException error) {
            // The answer goes stale: the last one is handed out until the catalog answers again.
            failedWith(error);
        } finally {
            k.refreshing.set(false);
            refreshes.release();
        }
    }

    /** Stops refreshing and forgets every answer; refreshes under way finish unheeded. */
    @Override
    public void close() {
        Thread t;
        synchronized (lifecycle) {
            closed = true;
            t = refresher;
            refresher = null;
        }
        kept.clear();
        if (t != null) {
            t.interrupt();
            LockSupport.unpark(t);
        }
    }
}
