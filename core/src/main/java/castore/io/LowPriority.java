package castore.io;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The lowest CPU priority for a background thread, without passing it on to the threads the JDK
 * creates on that thread's behalf. Linux gives a new thread its creator's nice value, and the
 * virtual-thread scheduler creates a carrier from whichever thread starts a virtual thread while
 * it has fewer carriers than its parallelism: a nice-19 thread starting one then leaves a nice-19
 * carrier, which from then on runs every virtual thread of the process (a mount's store fetches
 * among them) at the lowest priority. So the carriers are started from a thread at normal
 * priority: before the background thread lowers its own, and again before each piece of its work
 * (idle carriers retire after 30 s, and the next start would make new ones).
 */
public final class LowPriority {
    /** How long the carriers' start may take at most (each spins until all are running). */
    private static final long START_NANOS = TimeUnit.MILLISECONDS.toNanos(20);
    /**
     * Its thread is made when this class loads, by the thread that loads it: the caller of
     * {@link #lowerCurrentThread}, before the lowering.
     */
    private static final ThreadPoolExecutor STARTER = new ThreadPoolExecutor(1, 1, 0, TimeUnit.SECONDS,
            new LinkedBlockingQueue<>(), r -> {
                Thread t = new Thread(r, "castore-carrier-starter");
                t.setDaemon(true);
                return t;
            });

    static {
        STARTER.prestartCoreThread();
    }

    private LowPriority() {
    }

    /** Gives the calling thread nice 19 ({@link Libc#lowerCurrentThreadPriority}), the carriers made first. */
    public static void lowerCurrentThread() {
        startCarriers();
        Libc.lowerCurrentThreadPriority();
    }

    /**
     * Before a piece of work of a thread lowered by {@link #lowerCurrentThread} that may start
     * virtual threads: has the scheduler's carriers made by a thread at normal priority.
     */
    public static void beforeWork() {
        try {
            STARTER.submit(LowPriority::startCarriers).get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException e) {
            // best effort: the work goes on either way
        }
    }

    /**
     * Starts as many virtual threads as the scheduler has carriers at most, each spinning until
     * all run: the scheduler must then have them all, made by this thread if it lacked any.
     */
    static void startCarriers() {
        int parallelism = Integer.getInteger("jdk.virtualThreadScheduler.parallelism", Runtime.getRuntime().availableProcessors());
        AtomicInteger running = new AtomicInteger();
        long deadline = System.nanoTime() + START_NANOS;
        List<Thread> threads = new ArrayList<>(parallelism);
        for (int i = 0; i < parallelism; i++) {
            threads.add(Thread.ofVirtual().name("castore-carrier-start").start(() -> {
                running.incrementAndGet();
                // Spin, not block: a blocked virtual thread leaves its carrier to the next one.
                while (running.get() < parallelism && System.nanoTime() < deadline) {
                    Thread.onSpinWait();
                }
            }));
        }
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
