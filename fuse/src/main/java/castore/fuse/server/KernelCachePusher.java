package castore.fuse.server;

import castore.fuse.abi.Replies;
import castore.fuse.abi.Wire;
import castore.fuse.api.Errno;
import castore.fuse.api.KernelCache;
import castore.fuse.sys.Libc;

import java.lang.foreign.Arena;
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
 * For the same reason the write goes out from native memory through a normal downcall, unlike
 * replies (critical, straight from the heap): a critical call that waits on a page lock would hold
 * off every garbage collection meanwhile.
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
    /** Header plus one piece, in native memory; Arena.ofAuto: a write stuck at close must not free it. */
    private final MemorySegment message;
    private final MemorySegment callState;
    /** The header is encoded here, then copied in front of the piece. */
    private final byte[] header = new byte[Wire.OUT_HEADER + Wire.NOTIFY_STORE_OUT];
    private final int maxPiece;
    private final BlockingQueue<Offer> queue = new ArrayBlockingQueue<>(QUEUE);
    private final Thread thread;
    private final AtomicLong pushed = new AtomicLong();
    private final AtomicLong dropped = new AtomicLong();
    private volatile boolean closed;

    /** Pushes pieces of whole pages that fit, with their header, in a max_write reply's size. */
    KernelCachePusher(Channel channel, int maxWrite, String name) {
        this.channel = channel;
        this.maxPiece = Math.max(PAGE, (FuseServer.replyBufferSize(maxWrite) - header.length) / PAGE * PAGE);
        Arena arena = Arena.ofAuto();
        this.message = arena.allocate(header.length + maxPiece, PAGE);
        this.callState = Libc.newCallState(arena);
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
        try {
            while (true) {
                Offer o = queue.take();
                if (o == STOP) {
                    return;
                }
                for (int done = 0; done < o.length(); ) {
                    int n = Math.min(maxPiece, o.length() - done);
                    int length = Replies.notifyStore(header, o.nodeId(), o.offset() + done, n);
                    MemorySegment.copy(header, 0, message, ValueLayout.JAVA_BYTE, 0, length);
                    MemorySegment.copy(o.data(), o.from() + done, message, ValueLayout.JAVA_BYTE, length, n);
                    int result = channel.notify(message, length + n, callState);
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
