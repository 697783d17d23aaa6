package castore.fuse.server;

import castore.fuse.abi.Replies;
import castore.fuse.abi.Wire;
import castore.fuse.api.Errno;
import castore.fuse.api.KernelCache;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@link KernelCache} over a FUSE channel: offers queue up (a few, then they are dropped) and one
 * thread of its own writes them as FUSE_NOTIFY_STORE notifications. Never on a request thread:
 * the kernel copies a notification into page-cache pages under their page lock, and a page can be
 * locked by a READ still waiting for its reply; a reader blocked there could deadlock the mount.
 */
final class KernelCachePusher implements KernelCache, AutoCloseable {
    private static final System.Logger LOG = System.getLogger("castore.fuse");
    /** Offers waiting at most; more are dropped (each holds a reference to its data). */
    private static final int QUEUE = 16;
    private static final int PAGE = 4096;

    private record Offer(long nodeId, long offset, byte[] data, int from, int length) {
    }

    private static final Offer STOP = new Offer(0, 0, new byte[0], 0, 0);

    private final Channel channel;
    private final ReplyBuffer buffer;
    private final int maxPiece;
    private final BlockingQueue<Offer> queue = new ArrayBlockingQueue<>(QUEUE);
    private final Thread thread;
    private final AtomicLong pushed = new AtomicLong();
    private final AtomicLong dropped = new AtomicLong();
    private volatile boolean closed;

    KernelCachePusher(Channel channel, ReplyBuffer buffer, String name) {
        this.channel = channel;
        this.buffer = buffer;
        long room = buffer.segment().byteSize() - (Wire.OUT_HEADER + Wire.NOTIFY_STORE_OUT);
        this.maxPiece = (int) (room / PAGE * PAGE);
        this.thread = Thread.ofPlatform().name(name).daemon(true).start(this::run);
    }

    @Override
    public boolean offer(long nodeId, long offset, byte[] data, int from, int length) {
        if (closed || length <= 0 || offset % PAGE != 0 || from < 0 || length > data.length - from) {
            return false;
        }
        if (!queue.offer(new Offer(nodeId, offset, data, from, length))) {
            dropped.incrementAndGet();
            return false;
        }
        return true;
    }

    /** Bytes handed to the kernel so far. */
    long pushedBytes() {
        return pushed.get();
    }

    private void run() {
        MemorySegment out = buffer.segment();
        try {
            while (true) {
                Offer o = queue.take();
                if (o == STOP) {
                    return;
                }
                for (int done = 0; done < o.length(); ) {
                    int n = Math.min(maxPiece, o.length() - done);
                    int header = Replies.notifyStore(out, o.nodeId(), o.offset() + done, n);
                    MemorySegment.copy(o.data(), o.from() + done, out, ValueLayout.JAVA_BYTE, header, n);
                    int result = channel.write(buffer, header + n);
                    if (result != 0) {
                        // ENOENT: the kernel forgot the node meanwhile; anything else: stop offering this one.
                        if (result != -Errno.ENOENT && result != -Errno.ENODEV) {
                            LOG.log(System.Logger.Level.DEBUG, "FUSE_NOTIFY_STORE refused: {0}", Errno.name(-result));
                        }
                        break;
                    }
                    pushed.addAndGet(n);
                    done += n;
                }
            }
        } catch (InterruptedException e) {
            // closing
        }
    }

    /** Stops the thread after the offer being written, before the channel may close. */
    @Override
    public void close() {
        closed = true;
        queue.clear();
        if (!queue.offer(STOP)) {
            thread.interrupt();
        }
        try {
            if (!thread.join(java.time.Duration.ofSeconds(5))) {
                thread.interrupt();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
