package castore.service.cache;

import castore.io.DirectStream;
import castore.io.Libc;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * The appends to one cache segment, gathered in aligned native blocks of {@link #BLOCK} bytes that
 * a writer thread writes with O_DIRECT, past the page cache. A mount's cold read of a remote blob
 * writes every chunk it fetches to the disk tier; through the page cache that meant a second copy
 * of the data in memory beside the FUSE page cache's, fresh pages for the kernel to find (costly
 * in a VM whose host takes freed memory back) and a copy into them: ~9% of the mount's CPU per
 * cold GiB (docs/cache.md, "Direct appends").
 *
 * <p>Bytes appended but not yet in the file (the block being filled and the blocks queued) are
 * read from memory ({@link #read}); below the oldest of them the file is complete. Full blocks are
 * written whole, so every O_DIRECT write starts and ends on a block boundary; the last, partial
 * block ({@link #finish}) goes through the page cache. A crash loses what was not written yet:
 * records cut short, which the index walk at start ignores (it is only a cache).
 */
final class DirectAppender {
    /** One O_DIRECT write: a multiple of {@link DirectStream#ALIGN}. */
    static final int BLOCK = 1 << 20;

    /** The blocks a cache's appenders share (a few, allocated as needed) and the one thread that writes them, in order. */
    static final class Blocks implements AutoCloseable {
        private final int max;
        private final Arena arena = Arena.ofShared();
        private final ArrayBlockingQueue<MemorySegment> free;
        private final ExecutorService writer;
        private int allocated; // guarded by this

        Blocks(int max) {
            this(max, Executors.newSingleThreadExecutor(Thread.ofPlatform().daemon().name("castore-cache-writer").factory()));
        }

        /** With the writer given (one thread, tasks in order): tests hold it back. */
        Blocks(int max, ExecutorService writer) {
            this.max = max;
            this.free = new ArrayBlockingQueue<>(max);
            this.writer = writer;
        }

        /** A free block, waiting for the writer to return one when all are in use. */
        MemorySegment take() throws InterruptedIOException {
            MemorySegment block = free.poll();
            if (block != null) {
                return block;
            }
            synchronized (this) {
                if (allocated + 2 <= max) {
                    // Two blocks in one huge page: a block in 4 KiB pages is one DMA segment per
                    // page, and the disk's segment limit split each write of it in two.
                    MemorySegment pair = Libc.mapHugePages(2L * BLOCK, arena);
                    if (pair != null) {
                        allocated += 2;
                        free.add(pair.asSlice(BLOCK, BLOCK));
                        return pair.asSlice(0, BLOCK);
                    }
                }
                if (allocated < max) {
                    allocated++;
                    return arena.allocate(BLOCK, DirectStream.ALIGN);
                }
            }
            try {
                return free.take();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while waiting for the cache's writer");
            }
        }

        void give(MemorySegment block) {
            free.add(block);
        }

        /** After every appender has finished or closed: stops the writer and frees the blocks. */
        @Override
        public synchronized void close() {
            if (writer.isShutdown()) {
                return;
            }
            writer.shutdown();
            try {
                writer.awaitTermination(1, TimeUnit.MINUTES);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (writer.isTerminated()) {
                arena.close();
            } // else a write is stuck in the kernel: its block must stay valid; the memory goes with the process
        }
    }

    /** Part of the file's bytes from {@code start}, {@code used} of them so far. */
    private static final class Block {
        final MemorySegment memory;
        final long start;
        int used;
        boolean submitted;

        Block(MemorySegment memory, long start) {
            this.memory = memory;
            this.start = start;
        }
    }

    /**
     * What {@link #read} took from memory: the caller reads the first {@code fromFile} bytes of
     * the range from the file; {@code available} bytes of the range exist at all.
     */
    record Pending(long fromFile, long available) {
    }

    private final Path path;
    private final int fd;
    private final NativeFile plain;
    private final Blocks blocks;
    /** Oldest first; the last one may be the one being filled. Guarded by this. */
    private final ArrayDeque<Block> pending = new ArrayDeque<>();
    /** Offset after the last byte appended. Guarded by this. */
    private long end;
    /** A block write is in flight (close waits for it). Guarded by this. */
    private boolean writing;
    private boolean closed;
    /** {@link #finish} was called: the descriptor closes when nothing is pending. Guarded by this. */
    private boolean finishing;
    private boolean descriptorClosed;
    /** Set by the writer: the file system took O_DIRECT at open but refused a write; later blocks go through the page cache. */
    private volatile boolean refused;
    /** The first failed write or cut-short record: later appends fail with it. Guarded by this. */
    private IOException failure;
    /** Bytes from here on were lost (a failed write, a record cut short): reads of them fail. Guarded by this. */
    private long broken = Long.MAX_VALUE;

    /** Bytes from 0 reserved for the file when it was opened (0: none), what is left of them freed when the descriptor closes. */
    private final long reserved;

    private DirectAppender(Path path, int fd, NativeFile plain, Blocks blocks, long reserve) {
        this.path = path;
        this.fd = fd;
        this.plain = plain;
        this.blocks = blocks;
        // Appenders of a cache's lanes grow their files at once, a block at a time: without a
        // reservation the file system interleaves them, and a 64 MiB segment lay in 4-11 extents,
        // so a warm span of 4 MiB often went to the disk as two requests.
        this.reserved = reserve > 0 && Libc.fallocate(fd, Libc.FALLOC_FL_KEEP_SIZE, 0, reserve) ? reserve : 0;
    }

    /**
     * An appender for the new, empty file {@code path} (written through {@code plain} where
     * O_DIRECT will not do), or null if it cannot be opened with O_DIRECT. The file's first
     * {@code reserve} bytes are reserved on disk where the file system can, so that it lies in
     * one piece; what is left unwritten is given back once the last block is written.
     */
    static DirectAppender open(Path path, NativeFile plain, Blocks blocks, long reserve) {
        if (Libc.O_DIRECT == 0 || !Libc.available() || blocks.writer.isShutdown()) {
            return null;
        }
        try {
            return new DirectAppender(path, Libc.open(path, Libc.O_WRONLY | Libc.O_DIRECT, 0), plain, blocks, reserve);
        } catch (IOException refused) {
            return null; // EINVAL: this file system has no O_DIRECT
        }
    }

    /**
     * Appends one record, {@code header} then {@code bytes[0, length)}, at {@code offset} (which
     * must be where the last one ended); blocks that fill up are queued for the writer. Called by
     * one thread at a time. A record cut short (interrupted while waiting for a block) breaks the
     * appender from its start: nothing from there on is read back or written, later appends fail,
     * and the caller starts a new segment.
     */
    void appendRecord(byte[] header, byte[] bytes, int length, long offset) throws IOException {
        synchronized (this) {
            check();
            if (offset != end) {
                throw new IOException(path + ": append at " + offset + ", but the segment ends at " + end);
            }
        }
        try {
            append(header, header.length);
            append(bytes, length);
        } catch (IOException | RuntimeException e) {
            synchronized (this) {
                breakAt(offset, e instanceof IOException io ? io : new IOException(path + ": append failed", e));
            }
            throw e;
        }
    }

    /** Guarded by this: bytes from {@code offset} on are lost; the first cause is kept. */
    private void breakAt(long offset, IOException cause) {
        broken = Math.min(broken, offset);
        if (failure == null) {
            failure = cause;
        }
        notifyAll();
    }

    private void append(byte[] src, int length) throws IOException {
        int done = 0;
        while (done < length) {
            Block block = fillable();
            int n = Math.min(length - done, BLOCK - block.used);
            // Bytes past block.used are read by no one: copy first, publish after.
            MemorySegment.copy(src, done, block.memory, ValueLayout.JAVA_BYTE, block.used, n);
            synchronized (this) {
                block.used += n;
                end += n;
            }
            done += n;
            if (block.used == BLOCK) {
                submit(block, false);
            }
        }
    }

    /** The block being filled, or a new one at the end. */
    private Block fillable() throws IOException {
        synchronized (this) {
            check();
            Block last = pending.peekLast();
            if (last != null && !last.submitted) {
                return last;
            }
        }
        MemorySegment memory = blocks.take();
        synchronized (this) {
            if (closed || failure != null) {
                blocks.give(memory);
                check();
            }
            Block block = new Block(memory, end);
            pending.addLast(block);
            return block;
        }
    }

    private void check() throws IOException {
        if (failure != null) {
            throw new IOException("earlier write to " + path + " failed", failure);
        }
        if (closed) {
            throw new IOException(path + " is closed");
        }
    }

    private synchronized void submit(Block block, boolean last) {
        block.submitted = true;
        try {
            blocks.writer.execute(() -> write(block, last));
        } catch (RejectedExecutionException closing) {
            write(block, last); // the cache is closing: write it here (the lock is reentrant)
        }
    }

    /**
     * On the writer thread: the block to the file, then back to the free ones. Once a write has
     * failed (or a record was cut short) no block from there on is written, so the file stays a
     * prefix of what was appended: a record past it reads short (a miss), never as zeros.
     */
    private void write(Block block, boolean last) {
        synchronized (this) {
            if (closed || block.start >= broken) {
                pending.remove(block);
                blocks.give(block.memory);
                if (last || finishing && pending.isEmpty()) {
                    closeDescriptor();
                }
                notifyAll();
                return;
            }
            writing = true;
        }
        IOException error = null;
        try {
            MemorySegment data = block.memory.asSlice(0, block.used);
            if (last || refused) {
                plain.writeNative(data, block.start);
            } else if (!Libc.writeDirect(fd, data, block.start, path)) {
                refused = true;
                plain.writeNative(data, block.start);
            }
        } catch (IOException e) {
            error = e;
        } catch (RuntimeException | Error e) {
            error = new IOException(path + ": write failed", e);
        } finally {
            finished(block, last, error); // always, or close would wait for good
        }
    }

    private synchronized void finished(Block block, boolean last, IOException error) {
        writing = false;
        if (error != null) {
            breakAt(block.start, error);
        }
        pending.remove(block);
        blocks.give(block.memory);
        if (last || finishing && pending.isEmpty()) {
            closeDescriptor(); // nothing more comes: a sealed segment keeps no second descriptor
        }
        notifyAll();
    }

    /** Guarded by this. */
    private void closeDescriptor() {
        if (!descriptorClosed) {
            descriptorClosed = true;
            if (reserved > 0) {
                releaseReservation();
            }
            Libc.close(fd);
        }
    }

    /**
     * Gives back the reserved blocks past the file's end (the cache counts records, not reserved
     * blocks): a truncate to the file's own size, which is what was written (less than was
     * appended if a write failed: the file must not grow zeros where records were lost). The size
     * comes from the descriptor, not the path: another process sharing the directory may have
     * evicted the segment, and its blocks stay as long as this process holds it open.
     */
    private void releaseReservation() {
        long size = Libc.size(fd);
        if (size >= 0 && size < reserved) {
            Libc.ftruncate(fd, size);
        }
    }

    /**
     * Copies what of {@code [offset, offset + dst.byteSize())} is still in memory into
     * {@code dst}; null if none of it is (the file holds it all).
     */
    synchronized Pending read(MemorySegment dst, long offset) throws IOException {
        long to = offset + dst.byteSize();
        if (closed) {
            throw new IOException(path + " is closed"); // its blocks may be gone: claim nothing
        }
        if (to > broken) {
            throw new IOException(path + ": bytes from " + broken + " on were lost", failure);
        }
        if (pending.isEmpty()) {
            return null; // all in the file; reading past its end is a short read, as O_DIRECT allows
        }
        long durable = pending.peekFirst().start; // a block boundary: the file part stays aligned
        if (to <= durable) {
            return null;
        }
        for (Block block : pending) {
            long from = Math.max(offset, block.start);
            long until = Math.min(to, block.start + block.used);
            if (from < until) {
                MemorySegment.copy(block.memory, from - block.start, dst, from - offset, until - from);
            }
        }
        return new Pending(Math.max(0, durable - offset), Math.max(0, Math.min(to, end) - offset));
    }

    /** The offset from which appended bytes were lost (a failed write, a record cut short); Long.MAX_VALUE if none were. */
    synchronized long lostFrom() {
        return broken;
    }

    /** Bytes appended and not in the file yet. */
    synchronized long inMemory() {
        return closed || pending.isEmpty() ? 0 : end - pending.peekFirst().start;
    }

    /**
     * Queues the partial block for writing (through the page cache); nothing more is appended
     * after. The O_DIRECT descriptor closes once everything is written: after that last write,
     * or after the full blocks still in flight when the segment ends on a block boundary.
     */
    synchronized void finish() {
        finishing = true;
        Block last = pending.peekLast();
        if (last != null && !last.submitted) {
            if (last.used > 0) {
                submit(last, true);
                return;
            }
            pending.removeLast();
            blocks.give(last.memory);
        }
        if (pending.isEmpty()) {
            closeDescriptor();
        }
    }

    /** Waits until everything appended is in the file (or the appender is closed). */
    synchronized void awaitWritten() {
        boolean interrupted = false;
        while (!pending.isEmpty() && !closed) {
            try {
                wait();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Drops what is not written yet (its segment is going away), waits for a write in flight and closes the descriptor. Idempotent. */
    synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        boolean interrupted = false;
        while (writing) {
            try {
                wait();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        pending.removeIf(block -> {
            if (!block.submitted) {
                blocks.give(block.memory);
                return true;
            }
            return false; // its queued write sees closed and returns the block
        });
        closeDescriptor();
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
