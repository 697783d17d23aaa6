package castore.fs;

import castore.service.BlobReader;
import castore.service.CorruptedDataException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
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
 * kernel's own asynchronous readahead already keeps several reads in flight.
 */
final class OpenFile implements AutoCloseable {
    /** At most this many windows are kept per handle (memory bound: windows x window size). */
    private static final int MAX_WINDOWS = 3;
    /** Reads this close to the previous end count as sequential (the kernel's async reads can arrive out of order). */
    private static final long MIN_SLACK = 256 * 1024;

    final Inode inode;
    private final BlobReader reader;
    private final long size;
    private final int windowSize;
    private final long slack;
    private final BooleanSupplier storeIsSlow;

    // Guarded by this.
    private long frontier = -1;
    private int streak;
    private final ArrayDeque<Window> windows = new ArrayDeque<>();
    private boolean closed;
    /** For {@link KernelCacheFeeder}: whether the latest read continued the one before, and the last chunk pushed (racy: only hints). */
    private volatile boolean lastReadSequential;
    private volatile long lastPushedChunk = -1;

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
        this.windowSize = windowSize;
        this.slack = Math.max(MIN_SLACK, windowSize);
        this.storeIsSlow = storeIsSlow;
    }

    /** Fills {@code dst} from {@code offset}, short only at end of file. */
    void read(long offset, ByteBuffer dst) throws IOException {
        long end = Math.min(size, offset + dst.remaining());
        if (offset >= end) {
            return;
        }
        List<Window> ahead = plan(offset, end);
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
    }

    /** Updates the sequential-access detection, starts windows ahead of a sequential reader, returns a snapshot of them. */
    private synchronized List<Window> plan(long offset, long end) {
        boolean sequential = frontier >= 0 && Math.abs(offset - frontier) <= slack;
        streak = sequential ? streak + 1 : 0;
        frontier = sequential ? Math.max(frontier, end) : end;
        lastReadSequential = sequential;
        if (windowSize == 0 || closed) {
            return List.of();
        }
        while (!windows.isEmpty() && windows.peekFirst().end() <= offset) {
            windows.pollFirst();
        }
        if (streak >= 1 && storeIsSlow.getAsBoolean()) {
            long next = windows.isEmpty() ? end : Math.max(end, windows.peekLast().end());
            long horizon = Math.min(size, end + 2L * windowSize);
            while (next < horizon && windows.size() < MAX_WINDOWS) {
                int length = (int) Math.min(windowSize, size - next);
                windows.addLast(fetch(next, length));
                next += length;
            }
        }
        return windows.isEmpty() ? List.of() : List.copyOf(windows);
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
                windows.remove(window);
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

    /** Whether the latest read continued the one before it (the read-ahead's sequential-access rule). */
    boolean lastReadSequential() {
        return lastReadSequential;
    }

    /** True the first time in a row the chunk starting at {@code chunkStart} is offered to the kernel. */
    boolean firstPushOf(long chunkStart) {
        if (lastPushedChunk == chunkStart) {
            return false;
        }
        lastPushedChunk = chunkStart;
        return true;
    }

    @Override
    public void close() throws IOException {
        synchronized (this) {
            closed = true;
            windows.clear();
        }
        reader.close();
    }
}
