package castore.service.cache;

import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;

/**
 * Holds back the disk writes of one blob's fetched chunks so that each lane's chunks reach the
 * disk tier in index order, however their fetches overlap. A stream's read-ahead fetches several
 * chunks at once and they end in any order (over S3, each is a GET of its own: a cold GiB left
 * chunks displaced by 5 on average, up to 24). The disk tier reads a warm stream in spans only
 * where a run of chunks fills its range of a segment, and such a scramble broke a stream of
 * 4 MiB spans into reads of ~0.4 MiB (2331 device reads per GiB against 354 for chunks in order).
 *
 * <p>A chunk is written once no fetch of a lower index in its lane is still expected. Fetches are
 * expected from when they are asked for, in index order (read-ahead asks so), not from when they
 * start: background fetches start in any order. One that fails or finds the chunk elsewhere is
 * dropped and lets the ones behind it go. What waits is held by the reader anyway (its window or
 * the memory tier) and is bounded by the fetches in flight. Writes run under this object's lock
 * so that two threads releasing chunks cannot interleave them.
 */
final class InOrderWrites {
    /** Fetches expected: index to lane. */
    private final TreeMap<Integer, Integer> fetching = new TreeMap<>();
    /** Fetched chunks waiting for a lower index of their lane: index to its lane and write. */
    private final TreeMap<Integer, Held> held = new TreeMap<>();

    private record Held(int lane, Runnable write) {
    }

    /** A fetch of chunk {@code index}, to be stored in {@code lane}, will come (unless one is expected already). */
    synchronized void expect(int index, int lane) {
        fetching.putIfAbsent(index, lane);
    }

    /** The lane of the fetch of chunk {@code index} expected, else {@code lane}, which it is expected in from now on. */
    synchronized int expectedLane(int index, int lane) {
        return fetching.computeIfAbsent(index, i -> lane);
    }

    /**
     * Chunk {@code index} was fetched (or came from a stream, which needs no {@link #expect}):
     * {@code write} runs now if nothing before it in {@code lane} is under way, else once that is
     * done. Returns whether chunks held back before this one were written too.
     */
    synchronized boolean fetched(int index, int lane, Runnable write) {
        fetching.remove(index);
        held.put(index, new Held(lane, write));
        return release() > 1;
    }

    /**
     * {@link #fetched} of a chunk whose array the caller reuses once this returns: {@code write}
     * runs now if it can; if it must wait, the write {@code copy} makes (of a copy of the array)
     * waits instead.
     */
    synchronized boolean fetchedReusing(int index, int lane, Runnable write, java.util.function.Supplier<Runnable> copy) {
        fetching.remove(index);
        held.put(index, new Held(lane, waitsFor(index, lane) ? copy.get() : write));
        return release() > 1;
    }

    /**
     * The fetch of chunk {@code index} failed or will not come (the chunk was found elsewhere):
     * what waited for it goes. Returns whether anything was written.
     */
    synchronized boolean dropped(int index) {
        return fetching.remove(index) != null && release() > 0;
    }

    /** Chunks held back now (for tests). */
    synchronized int heldBack() {
        return held.size();
    }

    /** With the lock held: writes, in index order, every held chunk no lower fetch of its lane is waited for. */
    private int release() {
        int written = 0;
        for (Iterator<Map.Entry<Integer, Held>> it = held.entrySet().iterator(); it.hasNext();) {
            // Taken before the removal: a TreeMap may reuse the removed entry for its successor.
            Map.Entry<Integer, Held> next = it.next();
            int index = next.getKey();
            Held chunk = next.getValue();
            if (!waitsFor(index, chunk.lane())) {
                it.remove();
                chunk.write().run();
                written++;
            }
        }
        return written;
    }

    private boolean waitsFor(int index, int lane) {
        return fetching.headMap(index).containsValue(lane);
    }
}
