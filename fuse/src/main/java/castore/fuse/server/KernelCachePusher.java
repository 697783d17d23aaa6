package castore.fuse.server;

import castore.fuse.abi.Replies;
import castore.fuse.abi.Wire;
import castore.fuse.api.Errno;
import castore.fuse.api.KernelCache;
import castore.fuse.sys.Libc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@link KernelCache} over a FUSE channel: an offer is copied at once, with its header, into
 * notification messages in native memory (pieces of at most {@link #PIECE} bytes, at most
 * {@link #PIECES} of them waiting: more are dropped), so the caller may reuse its array as soon
 * as the offer returns; one thread of its own writes them as FUSE_NOTIFY_STORE notifications.
 * Never on a request thread: the kernel copies a notification into page-cache pages under their
 * page lock, and a page can be locked by a READ still waiting for its reply; a reader blocked
 * there could deadlock the mount. For the same reason the write goes out from native memory
 * through a normal downcall, unlike replies (critical, straight from the heap): a critical call
 * that waits on a page lock would hold off every garbage collection meanwhile.
 */
final class KernelCachePusher implements KernelCache, AutoCloseable {
    private static final System.Logger LOG = System.getLogger("castore.fuse");
    private static final int PAGE = 4096;
    private static final int HEADER = Wire.OUT_HEADER + Wire.NOTIFY_STORE_OUT;
    /** Bytes of content per notification at most: half a chunk of the largest size. */
    static final int PIECE = 256 * 1024;
    /** Messages made at most (4 MiB of content): made on first need, reused after. */
    static final int PIECES = 16;

    /** One notification: its message in native memory, the node it is for and its length. */
    private static final class Piece {
        final MemorySegment message;
        /** Which offer the piece belongs to: once the kernel refuses one piece, the offer's others are not sent. */
        long offer;
        int length;

        Piece(MemorySegment message) {
            this.message = message;
        }
    }

    private static final Piece STOP = new Piece(MemorySegment.NULL);

    private final Channel channel;
    private final MemorySegment callState;
    private final int piece;
    /** Messages are made here; Arena.ofAuto: a write stuck at close must not free one. */
    private final Arena arena = Arena.ofAuto();
    /** The header is encoded here, then copied in front of the content; guarded by {@code free}. */
    private final byte[] header = new byte[HEADER];
    /** Messages not in use; guarded by itself, as is {@link #made}. */
    private final ArrayDeque<Piece> free = new ArrayDeque<>();
    private int made;
    private long offers;
    private final LinkedBlockingQueue<Piece> queue = new LinkedBlockingQueue<>();
    private final Thread thread;
    private final AtomicLong pushed = new AtomicLong();
    private final AtomicLong dropped = new AtomicLong();
    private volatile boolean closed;

    /** Pushes pieces of whole pages that fit, with their header, in a max_write reply's size. */
    KernelCachePusher(Channel channel, int maxWrite, String name) {
        this.channel = channel;
        int fits = Math.max(PAGE, (FuseServer.replyBufferSize(maxWrite) - HEADER) / PAGE * PAGE);
        this.piece = Math.min(PIECE, fits);
        this.callState = Libc.newCallState(arena);
        this.thread = Thread.ofPlatform().name(name).daemon(true).start(this::run);
    }

    @Override
    public boolean offer(long nodeId, long offset, byte[] data, int from, int length) {
        if (closed || length <= 0 || offset % PAGE != 0 || from < 0 || length > data.length - from) {
            return false;
        }
        // Longer than every message together (a remote's large chunk): never taken whole, so its
        // first whole pages go instead.
        length = Math.min(length, PIECES * piece);
        List<Piece> pieces = take((length + piece - 1) / piece);
        if (pieces == null) {
            dropped.incrementAndGet();
            return false;
        }
        int done = 0;
        for (Piece p : pieces) {
            int n = Math.min(piece, length - done);
            int headerLength;
            synchronized (free) {
                headerLength = Replies.notifyStore(header, nodeId, offset + done, n);
                MemorySegment.copy(header, 0, p.message, ValueLayout.JAVA_BYTE, 0, headerLength);
            }
            MemorySegment.copy(data, from + done, p.message, ValueLayout.JAVA_BYTE, headerLength, n);
            p.length = headerLength + n;
            done += n;
        }
        queue.addAll(pieces);
        return true;
    }

    /** {@code count} free messages, or null (and none taken) if that many are not to be had. */
    private List<Piece> take(int count) {
        synchronized (free) {
            if (free.size() + (PIECES - made) < count) {
                return null;
            }
            offers++;
            var taken = new ArrayList<Piece>(count);
            while (taken.size() < count && !free.isEmpty()) {
                taken.add(free.pop());
            }
            while (taken.size() < count) {
                taken.add(new Piece(arena.allocate(HEADER + piece, PAGE)));
                made++;
            }
            for (Piece p : taken) {
                p.offer = offers;
            }
            return taken;
        }
    }

    /** Bytes handed to the kernel so far. */
    long pushedBytes() {
        return pushed.get();
    }

    private void run() {
        try {
            long refused = -1;
            while (true) {
                Piece p = queue.take();
                if (p == STOP) {
                    return;
                }
                try {
                    if (p.offer != refused) {
                        int result = channel.notify(p.message, p.length, callState);
                        if (result == 0) {
                            pushed.addAndGet(p.length - HEADER);
                        } else {
                            // ENOENT: the kernel forgot the node meanwhile; anything else: worth a note.
                            if (result != -Errno.ENOENT && result != -Errno.ENODEV) {
                                LOG.log(System.Logger.Level.DEBUG, "FUSE_NOTIFY_STORE refused: {0}", Errno.name(-result));
                            }
                            refused = p.offer;
                        }
                    }
                } catch (RuntimeException e) {
                    // A channel that throws must not end the writer: its messages would never come back.
                    LOG.log(System.Logger.Level.WARNING, "FUSE_NOTIFY_STORE failed", e);
                    refused = p.offer;
                } finally {
                    synchronized (free) {
                        free.push(p);
                    }
                }
            }
        } catch (InterruptedException e) {
            // closing
        }
    }

    /** Stops the thread after the piece being written, before the channel may close. */
    @Override
    public void close() {
        closed = true;
        queue.clear();
        queue.add(STOP);
        try {
            if (!thread.join(java.time.Duration.ofSeconds(5))) {
                thread.interrupt();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
