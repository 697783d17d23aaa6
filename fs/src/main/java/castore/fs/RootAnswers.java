package castore.fs;

import castore.model.Name;
import castore.model.Node;
import castore.service.RootService;
import java.io.IOException;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The root catalog's answers the mount has given the kernel, kept fresh off the request path.
 *
 * <p>A name in the mount root is valid for the root TTL, after which the kernel asks again, and
 * over a remote store every such lookup waited for a round trip (0.5-13 ms over loopback in a
 * fresh mount, tens of ms to an object store): once per TTL on every root in use, and in the
 * middle of whatever walk or build needed it. Here an answer is kept with the time it came in; a
 * lookup within the TTL of that time is answered from memory, valid for what is left of the TTL,
 * so the kernel never holds a name longer than the TTL after the catalog said so (the guarantee
 * of asking every time). A background thread asks the catalog again for every name looked up
 * in the last {@link #activeNanos}, every half TTL, so names in use stay fresh and their
 * lookups never wait; a name gone from the catalog is dropped, a re-pointed one replaced. When
 * the catalog cannot be asked the answers go stale and lookups ask it themselves, with its
 * errors. Names the catalog does not have are not kept (the kernel caches those itself).
 *
 * <p>The thread runs only while names are kept (it ends once the last one has been idle for the
 * active window) and until {@link #close}. TTLs under {@link #MIN_REFRESH_TTL_NANOS} get none:
 * answers are then only reused within their TTL.
 */
final class RootAnswers implements AutoCloseable {
    /** Below this TTL, refreshing every half TTL would ask the catalog too often to be worth it. */
    static final long MIN_REFRESH_TTL_NANOS = TimeUnit.MILLISECONDS.toNanos(200);
    /** Names not looked up for this long are no longer refreshed (nor kept). */
    static final long DEFAULT_ACTIVE_NANOS = TimeUnit.MINUTES.toNanos(1);

    /** An answer of the catalog and when it came in. */
    record Answer(Node node, long answeredAt) {
    }

    private static final class Kept {
        volatile Answer answer;
        volatile long lastUsed;

        Kept(Answer answer, long lastUsed) {
            this.answer = answer;
            this.lastUsed = lastUsed;
        }
    }

    private final RootService roots;
    private final long ttlNanos;
    private final long activeNanos;
    private final Map<Name, Kept> kept = new ConcurrentHashMap<>();
    private final Object lifecycle = new Object();
    private Thread refresher;
    private volatile boolean closed;

    RootAnswers(RootService roots, long ttlNanos) {
        this(roots, ttlNanos, DEFAULT_ACTIVE_NANOS);
    }

    RootAnswers(RootService roots, long ttlNanos, long activeNanos) {
        this.roots = roots;
        this.ttlNanos = ttlNanos;
        this.activeNanos = activeNanos;
    }

    /** Whether answers are kept at all (a TTL of 0 asks the catalog on every lookup). */
    boolean enabled() {
        return ttlNanos > 0;
    }

    /** The kept answer for {@code name} if it came in less than a TTL ago; null otherwise. */
    Answer fresh(Name name, long now) {
        Kept k = kept.get(name);
        if (k == null) {
            return null;
        }
        Answer a = k.answer;
        if (now - a.answeredAt() >= ttlNanos) {
            return null;
        }
        k.lastUsed = now;
        return a;
    }

    /** How long an answer that came in at {@code answeredAt} stays valid from {@code now} (0 once expired). */
    long remainingNanos(Answer answer, long now) {
        return Math.max(0, ttlNanos - (now - answer.answeredAt()));
    }

    /** Keeps the catalog's answer for {@code name}, which came in at {@code answeredAt}; empty: drops it. */
    void record(Name name, Optional<Node> node, long answeredAt) {
        if (!enabled() || closed) {
            return;
        }
        if (node.isEmpty()) {
            kept.remove(name);
            return;
        }
        Answer answer = new Answer(node.get(), answeredAt);
        Kept k = kept.get(name);
        if (k == null) {
            kept.put(name, new Kept(answer, answeredAt));
            startRefresher();
        } else {
            if (answeredAt - k.answer.answeredAt() > 0) {
                k.answer = answer;
            }
            k.lastUsed = answeredAt;
        }
    }

    /** Names kept (for tests). */
    int size() {
        return kept.size();
    }

    private void startRefresher() {
        if (ttlNanos < MIN_REFRESH_TTL_NANOS) {
            return;
        }
        synchronized (lifecycle) {
            if (refresher == null && !closed) {
                refresher = Thread.ofPlatform().name("castore-root-refresh").daemon(true).start(this::refreshLoop);
            }
        }
    }

    /** Runs while names are kept: once the last one is dropped (idle), the thread ends until the next is kept. */
    private void refreshLoop() {
        long period = ttlNanos / 2;
        while (true) {
            LockSupport.parkNanos(period);
            if (closed || Thread.interrupted()) {
                return;
            }
            refreshAll();
            synchronized (lifecycle) {
                if (closed || kept.isEmpty()) {
                    if (refresher == Thread.currentThread()) {
                        refresher = null;
                    }
                    return;
                }
            }
        }
    }

    /** Whether a refresher thread is running (for tests). */
    boolean refreshing() {
        synchronized (lifecycle) {
            return refresher != null && refresher.isAlive();
        }
    }

    /** Asks the catalog again for every name in use; drops names idle too long or gone. */
    void refreshAll() {
        for (var e : kept.entrySet()) {
            if (closed) {
                return;
            }
            Name name = e.getKey();
            Kept k = e.getValue();
            if (System.nanoTime() - k.lastUsed > activeNanos) {
                kept.remove(name, k);
                continue;
            }
            Optional<Node> node;
            try {
                node = roots.get(name);
            } catch (IOException | RuntimeException failed) {
                continue; // the answer goes stale; the next lookup asks and reports the error
            }
            long answeredAt = System.nanoTime();
            if (node.isEmpty()) {
                kept.remove(name, k);
            } else if (answeredAt - k.answer.answeredAt() > 0) {
                k.answer = new Answer(node.get(), answeredAt);
            }
        }
    }

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
