package castore.io;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The {@link DirectStream}s of one blob reader: up to a few sequential streams over its chunks
 * (parallel readers of one file share a reader), each made when a stream is first recognised,
 * within the {@link DirectReads} cap on buffer memory. Thread-safe.
 */
public final class DirectStreams implements AutoCloseable {
    private final DirectReads reads;
    private final int count;
    private final int maxChunk;
    private final DirectStream.Loader loader;
    private final DirectStream[] streams;
    /** A copy of {@code streams} for lock-free reads, replaced on every change (under this). */
    private volatile DirectStream[] current;
    /** The stream re-pointed next when all are in use; guarded by this. */
    private int next;
    private boolean closed;
    private volatile boolean any;

    /**
     * For a blob of {@code count} chunks of at most {@code maxChunk} bytes, with up to
     * {@code max} streams.
     */
    public DirectStreams(DirectReads reads, int max, int count, int maxChunk, DirectStream.Loader loader) {
        this.reads = reads;
        this.count = count;
        this.maxChunk = maxChunk;
        this.loader = loader;
        this.streams = new DirectStream[max];
        this.current = streams.clone();
    }

    /**
     * Copies bytes of chunk {@code index} from the stream that holds or loads it (waiting for the
     * load); how many, or -1 if none does.
     */
    public int copy(int index, int within, ByteBuffer dst) throws IOException {
        if (!any) {
            return -1;
        }
        for (DirectStream stream : current) {
            if (stream != null) {
                int n = stream.copy(index, within, dst);
                if (n >= 0) {
                    return n;
                }
            }
        }
        return -1;
    }

    /**
     * Points a stream at chunk {@code index}, a sequential reader's next miss: the stream that
     * was just behind it, else a new one, else the one re-pointed least recently; then copies as
     * {@link #copy}. -1 if no stream can be had (the cap on buffers, closed) or the loader does
     * not have the chunk.
     */
    public int start(int index, int within, ByteBuffer dst) throws IOException {
        DirectStream stream = streamFor(index);
        if (stream == null) {
            return -1;
        }
        return stream.startAt(index, within, dst);
    }

    /** Whether a stream took chunk {@code index} lately or is about to: a read there continues it. */
    public boolean follows(int index) {
        if (!any) {
            return false;
        }
        for (DirectStream stream : current) {
            if (stream != null && near(stream.latest(), index)) {
                return true;
            }
        }
        return false;
    }

    private static boolean near(int latest, int index) {
        return latest >= 0 && index >= latest - DirectStream.BEHIND && index <= latest + DirectStream.AHEAD + 2;
    }

    /** Whether a stream is open now (one was made, and neither closed nor taken back since). */
    public boolean streaming() {
        if (!any) {
            return false;
        }
        for (DirectStream stream : current) {
            if (stream != null) {
                return true;
            }
        }
        return false;
    }

    /** Whether any stream was made (for tests). */
    public boolean active() {
        return any;
    }

    /** Ends the streams (waiting for their loads) and gives their buffers back to the cap. */
    @Override
    public void close() {
        DirectStream[] all;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            all = streams.clone();
            java.util.Arrays.fill(streams, null);
            current = streams.clone();
        }
        for (DirectStream stream : all) {
            if (stream != null) {
                stream.close();
                reads.release(DirectStream.footprint(maxChunk, loader));
            }
        }
        reads.unregister(this);
    }

    /**
     * The stream for a miss at {@code index}: one near it, else a new one (its buffers reserved
     * outside this object's lock: reserving may close idle streams of other readers), else the
     * one re-pointed least recently; null if closed or refused by the cap with none made yet.
     */
    private DirectStream streamFor(int index) {
        synchronized (this) {
            if (closed) {
                return null;
            }
            for (DirectStream stream : streams) {
                if (stream != null && near(stream.latest(), index)) {
                    return stream;
                }
            }
        }
        long footprint = DirectStream.footprint(maxChunk, loader);
        boolean reserved = freeSlot() >= 0 && reads.reserve(footprint);
        synchronized (this) {
            int free = freeSlot();
            if (reserved && free >= 0 && !closed) {
                DirectStream made;
                try {
                    made = new DirectStream(count, maxChunk, loader, reads);
                } catch (RuntimeException | OutOfMemoryError noMemory) {
                    reads.release(footprint);
                    return null;
                }
                streams[free] = made;
                current = streams.clone();
                if (!any) {
                    any = true;
                    reads.register(this);
                }
                return streams[free];
            }
            if (reserved) {
                reads.release(footprint);
            }
            if (closed) {
                return null;
            }
            for (int i = 0; i < streams.length; i++) {
                DirectStream oldest = streams[next];
                next = (next + 1) % streams.length;
                if (oldest != null) {
                    return oldest;
                }
            }
            return null;
        }
    }

    /** With this locked (or for a hint): the index of an empty stream place, -1 if all are taken. */
    private synchronized int freeSlot() {
        for (int i = 0; i < streams.length; i++) {
            if (streams[i] == null) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Closes this reader's streams that no one took a chunk from for {@code idleNanos} and gives
     * their buffers back to the cap; how many bytes. Called when another reader needs the room.
     */
    long reclaimIdle(long idleNanos) {
        long freed = 0;
        synchronized (this) {
            for (int i = 0; i < streams.length; i++) {
                if (streams[i] != null && streams[i].closeIfIdle(idleNanos)) {
                    streams[i] = null;
                    current = streams.clone();
                    freed += DirectStream.footprint(maxChunk, loader);
                }
            }
        }
        reads.release(freed);
        return freed;
    }
}
