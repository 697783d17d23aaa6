package castore.fs;

import castore.service.BlobReader;
import castore.service.CorruptedDataException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.function.BooleanSupplier;

/**
 * One open file: the blob reader opened once at open(2), shared by every read on the handle.
 * Reads are positional and run in parallel; the lock here only guards the read-ahead
 * bookkeeping, never I/O. A reader that keeps reading near where it stopped is sequential: the
 * next windows of the blob are then fetched on virtual threads before the kernel asks for them,
 * while blob access is slow (a remote store, a cold disk). A fast store gains nothing from it: the
 * kernel's own asynchronous readahead already keeps several reads in flight, and a reader that
 * {@linkplain BlobReader#readsAhead reads ahead itself} (the local store) gets no windows.
 */
final class OpenFile implements AutoCloseable {
    /** At most this many windows are kept per stream (memory bound: streams x windows x window size). */
    private static final int MAX_WINDOWS = 3;
    /**
     * Sequential streams told apart on one handle: reads without a file handle (zero-message
     * opens) share one open file per inode, so parallel readers of one file meet here.
     */
    private static final int STREAMS = 4;
    /** Reads this close to the previous end count as sequential (the kernel's async reads can arrive out of order). */
    private static final long MIN_SLACK = 256 * 1024;

    final Inode inode;
    private final BlobReader reader;
    private final long size;
    private final int windowSize;
    private final long slack;
    private final BooleanSupplier storeIsSlow;

    // Guarded by this.
    private final Stream[] streams = new Stream[STREAMS];
    private int nextStream;
    private boolean closed;
    /** For {@link KernelCacheFeeder}: the last chunk pushed (racy: only a hint). */
    private volatile long lastPushedChunk = -1;

    /** One sequential reader: where its latest read ended and the windows fetched ahead of it. */
    private static final class Stream {
        long frontier;
        final ArrayDeque<Window> windows = new ArrayDeque<>();
    }

    /** A prefetched range [start, start + length) of the blob. */
    private record Window(long start, int length, CompletableFuture<byte[]> data) {
        long end() {
            return start + length;
        }

        boolean covers(long position) {
            return position >= start && position < end();
        }
    }

    OpenFile(Inode inode, BlobReader reader, long size, int windowSize, BooleanSupplier storeIsSlow) {
        this.inode = inode;
        this.reader = reader;
        this.size = size;
        this.windowSize = reader.readsAhead() ? 0 : windowSize;
        this.slack = Math.max(MIN_SLACK, windowSize);
        this.storeIsSlow = storeIsSlow;
    }

    /**
     * Fills {@code dst} from {@code offset}, short only at end of file. Returns whether the read
     * continued one of the handle's sequential streams (the kernel's readahead then asks for what
     * follows anyway).
     */
    boolean read(long offset, ByteBuffer dst) throws IOException {
        long end = Math.min(size, offset + dst.remaining());
        if (offset >= end) {
            return false;
        }
        var plan = plan(offset, end);
        List<Window> ahead = plan.windows();
        long position = offset;
        while (position < end) {
            Window window = find(ahead, position);
            byte[] data = window == null ? null : await(window);
            if (data != null) {
                int n = (int) (Math.min(end, window.end()) - position);
                dst.put(data, (int) (position - window.start()), n);
                position += n;
            } else {
                long stop = end;
                for (Window w : ahead) {
                    if (w.start() > position && w.start() < stop && w != window) {
                        stop = w.start();
                    }
                }
                readFully(position, dst, (int) (stop - position));
                position = stop;
            }
        }
        return plan.sequential();
    }

    private record Plan(boolean sequential, List<Window> windows) {
    }

    /** The plans of a read with no windows ahead: most reads (a local store, a fast one), made once. */
    private static final Plan SEQUENTIAL = new Plan(true, List.of());
    private static final Plan NOT_SEQUENTIAL = new Plan(false, List.of());

    /**
     * Finds the stream {@code [offset, end)} continues (or starts a new one in place of the
     * oldest), starts windows ahead of a sequential stream while the store is slow, and returns
     * a snapshot of that stream's windows.
     */
    private synchronized Plan plan(long offset, long end) {
        Stream stream = null;
        for (Stream s : streams) {
            if (s != null && Math.abs(offset - s.frontier) <= slack) {
                stream = s;
                break;
            }
        }
        boolean sequential = stream != null;
        if (stream == null) {
            // The oldest stream's slot, and its windows, go to the new one.
            stream = streams[nextStream];
            if (stream == null) {
                stream = streams[nextStream] = new Stream();
            } else {
                stream.windows.clear();
            }
            stream.frontier = end;
            nextStream = (nextStream + 1) % STREAMS;
        } else {
            stream.frontier = Math.max(stream.frontier, end);
        }
        if (windowSize == 0 || closed) {
            return sequential ? SEQUENTIAL : NOT_SEQUENTIAL;
        }
        ArrayDeque<Window> windows = stream.windows;
        while (!windows.isEmpty() && windows.peekFirst().end() <= offset) {
            windows.pollFirst();
        }
        if (sequential && storeIsSlow.getAsBoolean()) {
            long next = windows.isEmpty() ? end : Math.max(end, windows.peekLast().end());
            long horizon = Math.min(size, end + 2L * windowSize);
            while (next < horizon && windows.size() < MAX_WINDOWS) {
                int length = (int) Math.min(windowSize, size - next);
                windows.addLast(fetch(next, length));
                next += length;
            }
        }
        if (windows.isEmpty()) {
            return sequential ? SEQUENTIAL : NOT_SEQUENTIAL;
        }
        return new Plan(sequential, List.copyOf(windows));
    }

    private Window fetch(long start, int length) {
        var data = new CompletableFuture<byte[]>();
        Thread.ofVirtual().name("castore-read-ahead").start(() -> {
            try {
                byte[] bytes = new byte[length];
                readFully(start, ByteBuffer.wrap(bytes), length);
                data.complete(bytes);
            } catch (Throwable t) {
                data.completeExceptionally(t);
            }
        });
        return new Window(start, length, data);
    }

    private static Window find(List<Window> windows, long position) {
        for (Window w : windows) {
            if (w.covers(position)) {
                return w;
            }
        }
        return null;
    }

    /** The window's bytes, or null if its fetch failed (the caller then reads directly, which reports the real error). */
    private byte[] await(Window window) throws IOException {
        try {
            return window.data().get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for read-ahead");
        } catch (ExecutionException e) {
            synchronized (this) {
                for (Stream stream : streams) {
                    if (stream != null) {
                        stream.windows.remove(window);
                    }
                }
            }
            return null;
        }
    }

    /** Reads exactly {@code length} bytes at {@code position} into {@code dst}. */
    private void readFully(long position, ByteBuffer dst, int length) throws IOException {
        ByteBuffer target = dst.slice(dst.position(), length);
        long at = position;
        while (target.hasRemaining()) {
            int n = reader.read(at, target);
            if (n <= 0) {
                throw new CorruptedDataException("blob ends at " + at + ", before its size " + size);
            }
            at += n;
        }
        dst.position(dst.position() + length);
    }

    BlobReader reader() {
        return reader;
    }

    long size() {
        return size;
    }

    /** Whether the chunk starting at {@code chunkStart} is the last one the kernel took from this file. */
    boolean lastPushed(long chunkStart) {
        return lastPushedChunk == chunkStart;
    }

    /** Records that the kernel took (part of) the chunk starting at {@code chunkStart}. */
    void pushed(long chunkStart) {
        lastPushedChunk = chunkStart;
    }

    @Override
    public void close() throws IOException {
        synchronized (this) {
            closed = true;
            Arrays.fill(streams, null);
        }
        reader.close();
    }
}
