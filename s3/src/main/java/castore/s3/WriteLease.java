package castore.s3;

import castore.service.StoreBusyException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.UUID;

/**
 * Keeps writers and GC apart across machines. A process that writes first puts
 * {@code leases/<id>} and then checks that {@code locks/gc} is absent; GC puts {@code locks/gc}
 * (create-only) and then checks that no fresh lease exists. With S3's strong read-after-write
 * consistency at least one of the two sees the other, so GC never sweeps under an import.
 * Leases are refreshed while writing; one older than {@link #STALE} (a crashed writer) is ignored.
 *
 * <p>A lease that lapsed (no write for {@link #STALE}) is taken anew, and a gc may have run in
 * the gap: each lease taken gets a new <em>generation</em>, which {@link #beforeWrite} returns.
 * What a writer learned under an earlier generation (a child Directory seen stored, chunks it
 * uploaded for a blob it has not finished) may be gone, and the writer must look again or fail.
 */
final class WriteLease implements AutoCloseable {
    static final Duration REFRESH = Duration.ofMinutes(2);
    static final Duration STALE = Duration.ofMinutes(15);
    /**
     * How old a lease must be for gc to take it for a crashed writer's: a little more than
     * {@link #STALE}, by which its writer takes it anew. Server times have one-second resolution
     * (HTTP dates) and the writer counts from just before its PUT: at exactly {@link #STALE}, gc
     * could take a lease for stale up to a second before its writer does, while the writer still
     * writes on without looking for gc's lock.
     */
    static final Duration STALE_FOR_GC = STALE.plusSeconds(30);

    private final Bucket bucket;
    /** Measures only the intervals between our own writes: monotonic in use, movable in tests. */
    private final InstantSource clock;
    private final String key = Keys.LEASES + UUID.randomUUID();
    private Instant refreshed;
    /** How many times a lease was taken (not refreshed); 0 before the first. */
    private long generation;

    /** A source that never jumps: a wall clock set back would keep us from refreshing the lease. */
    static final InstantSource MONOTONIC = new InstantSource() {
        private final long start = System.nanoTime();

        @Override
        public Instant instant() {
            return Instant.EPOCH.plusNanos(System.nanoTime() - start);
        }
    };

    WriteLease(Bucket bucket, InstantSource clock) {
        this.bucket = bucket;
        this.clock = clock;
    }

    /**
     * Called before every write; cheap unless the lease must be taken or refreshed. Returns the
     * lease's generation: the same as at an earlier call only if no gc can have run between them.
     */
    synchronized long beforeWrite() throws IOException {
        Instant now = clock.instant();
        if (refreshed != null && Duration.between(refreshed, now).compareTo(REFRESH) < 0) {
            return generation;
        }
        // A GC that started while our lease was fresh saw it and backs off; otherwise it may be sweeping.
        boolean wasFresh = refreshed != null && Duration.between(refreshed, now).compareTo(STALE) < 0;
        bucket.put(key, ("writer since " + Instant.now() + "\n").getBytes(StandardCharsets.UTF_8));
        if (!wasFresh && bucket.exists(Keys.GC_LOCK)) {
            bucket.delete(key, null);
            throw new StoreBusyException("garbage collection is running on " + bucket.location().display()
                    + " (lock " + Keys.GC_LOCK + "); try again when it has finished");
        }
        if (!wasFresh) {
            generation++;
        }
        refreshed = now;
        return generation;
    }

    @Override
    public synchronized void close() throws IOException {
        if (refreshed != null) {
            refreshed = null;
            bucket.delete(key, null);
        }
    }
}
