package castore.fuse.server;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Supplier;

/**
 * Reply buffers for requests served on virtual threads. Buffers are made on demand and kept for
 * reuse, so the pool grows to the peak number of concurrently served slow requests (which the
 * kernel bounds: max_background plus the callers blocked in syscalls) and never allocates per
 * request after warm-up.
 */
public final class BufferPool {
    private final ConcurrentLinkedQueue<ReplyBuffer> free = new ConcurrentLinkedQueue<>();
    private final Supplier<ReplyBuffer> factory;

    public BufferPool(Supplier<ReplyBuffer> factory) {
        this.factory = factory;
    }

    public ReplyBuffer acquire() {
        ReplyBuffer b = free.poll();
        return b != null ? b : factory.get();
    }

    public void release(ReplyBuffer buffer) {
        free.offer(buffer);
    }
}
