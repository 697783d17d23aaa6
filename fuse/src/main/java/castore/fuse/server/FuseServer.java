package castore.fuse.server;

import castore.fuse.abi.Init;
import castore.fuse.abi.InitFlags;
import castore.fuse.abi.Opcode;
import castore.fuse.abi.Replies;
import castore.fuse.abi.Wire;
import castore.fuse.api.BackingFiles;
import castore.fuse.api.Errno;
import castore.fuse.api.FileSystem;
import castore.fuse.api.FuseException;
import castore.fuse.api.InitInfo;
import castore.fuse.api.KernelCache;
import castore.fuse.api.Request;

import java.io.IOException;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicBoolean;

import static castore.fuse.abi.Wire.i32;
import static castore.fuse.abi.Wire.u64;

/**
 * Serves FUSE requests: decodes one, calls the {@link FileSystem}, encodes and sends the reply on the
 * channel the request came from. Transport-neutral: it sees bytes in, a {@link Channel} out.
 *
 * <p>Threading: {@link #handle} runs on a reader thread that holds the transport's {@link ReadTurn}.
 * A quick request (the filesystem says it will not {@link FileSystem#mayBlock block}) is answered
 * there, with the reader's own buffer, and the reader keeps the turn: no other thread wakes, so a
 * stream of metadata requests from one process costs one context switch each, as in a
 * single-threaded server. Before a request that may block, or a READ of at least
 * {@link #SPREAD_READ} bytes when the readers have several CPUs, the reader passes the turn, so
 * another reader takes the next request meanwhile. If none is free, a request that may block is
 * served on a fresh virtual thread with a pooled reply buffer instead (libfuse's multi-threaded
 * loop starts a thread in the same situation), so that some reader is always free to take the
 * next request.
 * Write-type requests get EROFS, unknown ones ENOSYS, FORGET/BATCH_FORGET no reply.
 */
public final class FuseServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("castore.fuse");

    /**
     * @param maxWrite      the largest READ/WRITE payload (bytes); max_pages = maxWrite / pageSize
     * @param pageSize      the kernel's page size
     * @param maxBackground background requests the kernel may keep in flight
     * @param debug         print one line per request and reply on stderr
     */
    public record Config(int maxWrite, int pageSize, int maxBackground, boolean debug) {
    }

    /**
     * READs at least this large pass the turn: serving one (a chunk loaded, hashed, copied) takes
     * long enough for parallel readers on other CPUs to pay for waking another reader.
     */
    public static final int SPREAD_READ = 64 * 1024;

    private final FileSystem fs;
    private final Config config;
    private final BufferPool pool;
    private final ThreadFactory workers = Thread.ofVirtual().factory();
    private final AtomicInteger inFlight = new AtomicInteger();
    /** Set by a close that stopped waiting: run by the last offloaded request to end (see {@link #close(long, Runnable)}). */
    private volatile Runnable afterDrain;
    private final AtomicBoolean drained = new AtomicBoolean();
    private final AtomicBoolean destroyed = new AtomicBoolean();
    private volatile InitInfo initInfo;
    private final CompletableFuture<InitInfo> initialized = new CompletableFuture<>();
    private final AtomicBoolean warnedWriteError = new AtomicBoolean();
    private final java.util.concurrent.atomic.AtomicLong interrupts = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.LongAdder requests = new java.util.concurrent.atomic.LongAdder();
    private volatile KernelCachePusher kernelCache;
    /** What the filesystem pushes page-cache data to: the pusher, or nothing while a hand-over pauses it. */
    private final CacheSwitch cacheSwitch = new CacheSwitch();
    /** The channel INIT came on (for a new pusher after a hand-over that failed). */
    private volatile Channel initChannel;

    public FuseServer(FileSystem fs, Config config, BufferPool pool) {
        this.fs = fs;
        this.config = config;
        this.pool = pool;
    }

    /** What INIT negotiated, or null before INIT. */
    public InitInfo initInfo() {
        return initInfo;
    }

    /**
     * Completes with what INIT negotiated once it has been answered, or exceptionally (with an
     * IllegalStateException saying why) if INIT was refused.
     */
    public CompletableFuture<InitInfo> initialized() {
        return initialized;
    }

    /** Bytes pushed into the kernel's page cache through {@link KernelCache} so far. */
    public long kernelCachePushedBytes() {
        KernelCachePusher pusher = kernelCache;
        return pusher == null ? 0 : pusher.pushedBytes();
    }

    /** How many requests arrived, of every kind. */
    public long requestsReceived() {
        return requests.sum();
    }

    /** How many INTERRUPT requests arrived (after the first is answered ENOSYS, usually one at most). */
    public long interruptsReceived() {
        return interrupts.get();
    }

    /** The size a reply buffer must have: out header plus the largest READ. */
    public static int replyBufferSize(int maxWrite) {
        return Math.addExact(Wire.OUT_HEADER, maxWrite);
    }

    /** The size a read buffer must have for this max_write. */
    public static int readBufferSize(int maxWrite) {
        return Math.max(Wire.MIN_READ_BUFFER, Math.addExact(Wire.WRITE_OVERHEAD, maxWrite));
    }

    /**
     * Serves one request held in {@code in[0, length)}, as read from {@code channel} (copied to
     * the heap: decoding there is cheap even before the JIT has compiled it) by a reader holding
     * {@code turn}. Replies that are answered right away use {@code own}, the calling reader's buffer.
     */
    public void handle(byte[] in, int length, Channel channel, ReplyBuffer own, ReadTurn turn) {
        requests.increment();
        dispatch(in, length, channel, own, turn);
        // Whoever waits for INIT (mount) learns of it only now that this reader is free again.
        InitInfo info = initInfo;
        if (info != null && !initialized.isDone()) {
            initialized.complete(info);
        }
    }

    /** {@link #handle(byte[], int, Channel, ReplyBuffer, ReadTurn)} by the only reader there is. */
    public void handle(byte[] in, int length, Channel channel, ReplyBuffer own) {
        handle(in, length, channel, own, ReadTurn.ALONE);
    }

    private void dispatch(byte[] in, int length, Channel channel, ReplyBuffer own, ReadTurn turn) {
        if (length < Wire.IN_HEADER) {
            LOG.log(System.Logger.Level.ERROR, "short FUSE request: {0} bytes", length);
            return;
        }
        int opcode = i32(in, Wire.IN_OPCODE);
        long unique = u64(in, Wire.IN_UNIQUE);
        long nodeId = u64(in, Wire.IN_NODEID);
        if (config.debug) {
            System.err.printf("fuse: <- %d %s node %d (%d bytes)%n", unique, Opcode.name(opcode), nodeId, length);
        }
        if (i32(in, Wire.IN_LEN) != length) {
            LOG.log(System.Logger.Level.ERROR, "FUSE request length {0} but read {1} bytes", i32(in, Wire.IN_LEN), length);
            replyError(channel, own, unique, Errno.EIO);
            return;
        }
        int bodyLength = length - Wire.IN_HEADER;
        switch (opcode) {
            case Opcode.INIT -> init(in, bodyLength, unique, channel, own);
            case Opcode.DESTROY -> {
                destroy();
                replyEmpty(channel, own, unique);
            }
            case Opcode.FORGET -> {
                if (bodyLength >= Wire.FORGET_IN) {
                    forget(nodeId, u64(in, Wire.IN_HEADER));
                }
            }
            case Opcode.BATCH_FORGET -> batchForget(in, bodyLength);
            case Opcode.NOTIFY_REPLY -> {
                // A reply to a retrieve notification; we send none, and the kernel expects no answer.
            }
            // We never abort work, and ENOSYS tells the kernel to stop sending interrupts (it
            // takes effect when this channel still holds the original request; else the kernel
            // answers ENOENT, which send() ignores). The original request is answered normally.
            case Opcode.INTERRUPT -> {
                interrupts.incrementAndGet();
                replyError(channel, own, unique, Errno.ENOSYS);
            }
            // ENOSYS is remembered by the kernel, which then answers these itself, at no round trip:
            // FLUSH and FSYNC/FSYNCDIR/SYNCFS succeed, locks become local, STATX falls back to GETATTR.
            case Opcode.FLUSH, Opcode.FSYNC, Opcode.FSYNCDIR, Opcode.SYNCFS, Opcode.GETLK, Opcode.SETLK,
                 Opcode.SETLKW, Opcode.BMAP, Opcode.IOCTL, Opcode.POLL, Opcode.STATX, Opcode.SETUPMAPPING,
                 Opcode.REMOVEMAPPING -> replyError(channel, own, unique, Errno.ENOSYS);
            default -> {
                if (Opcode.isWrite(opcode)) {
                    replyError(channel, own, unique, Errno.EROFS);
                    return;
                }
                Call call;
                try {
                    call = decode(opcode, in, length, unique, nodeId);
                } catch (IllegalArgumentException malformed) {
                    LOG.log(System.Logger.Level.ERROR, "malformed FUSE {0} request: {1}", Opcode.name(opcode),
                            malformed.getMessage());
                    replyError(channel, own, unique, Errno.EIO);
                    return;
                }
                if (call == null) {
                    replyError(channel, own, unique, Errno.ENOSYS);
                } else if (fs.mayBlock(call.op(), nodeId)) {
                    if (turn.pass()) {
                        serve(call, channel, own); // another reader takes the next request meanwhile
                    } else {
                        inFlight.incrementAndGet();
                        workers.newThread(() -> serveOffloaded(call, channel)).start();
                    }
                } else {
                    if (call instanceof Call.Read read && read.size() >= SPREAD_READ) {
                        turn.passForWork();
                    }
                    serve(call, channel, own);
                }
            }
        }
    }

    /** Decodes a filesystem request; null for an opcode nobody serves. */
    static Call decode(int opcode, byte[] in, int length, long unique, long nodeId) {
        int body = length - Wire.IN_HEADER;
        Request r = new Request(unique, i32(in, Wire.IN_UID), i32(in, Wire.IN_GID), i32(in, Wire.IN_PID));
        int at = Wire.IN_HEADER;
        return switch (opcode) {
            case Opcode.LOOKUP -> new Call.Lookup(r, nodeId, cString(in, at, length));
            case Opcode.GETATTR -> new Call.Getattr(r, nodeId);
            case Opcode.READLINK -> new Call.Readlink(r, nodeId);
            case Opcode.OPEN -> new Call.Open(r, nodeId, i32(in, need(at, body, Wire.OPEN_IN)));
            case Opcode.READ, Opcode.READDIR, Opcode.READDIRPLUS -> {
                need(at, body, Wire.READ_IN);
                long fh = u64(in, at);
                long offset = u64(in, at + 8);
                int size = i32(in, at + 16);
                if (size < 0) {
                    throw new IllegalArgumentException("read size " + Integer.toUnsignedString(size));
                }
                yield opcode == Opcode.READ
                        ? new Call.Read(r, nodeId, fh, offset, size)
                        : new Call.Readdir(r, nodeId, fh, offset, size, opcode == Opcode.READDIRPLUS);
            }
            case Opcode.RELEASE -> new Call.Release(r, nodeId, u64(in, need(at, body, Wire.RELEASE_IN)));
            case Opcode.OPENDIR -> new Call.Opendir(r, nodeId);
            case Opcode.RELEASEDIR -> new Call.Releasedir(r, nodeId, u64(in, need(at, body, Wire.RELEASE_IN)));
            case Opcode.STATFS -> new Call.Statfs(r, nodeId);
            case Opcode.GETXATTR -> new Call.Xattr(r, nodeId,
                    cString(in, at + Wire.GETXATTR_IN, length), i32(in, need(at, body, Wire.GETXATTR_IN)));
            case Opcode.LISTXATTR -> new Call.Xattr(r, nodeId, null, i32(in, need(at, body, Wire.GETXATTR_IN)));
            case Opcode.ACCESS -> new Call.Access(r, nodeId, i32(in, need(at, body, Wire.ACCESS_IN)));
            case Opcode.LSEEK -> {
                need(at, body, Wire.LSEEK_IN);
                yield new Call.Lseek(r, nodeId, u64(in, at), u64(in, at + 8), i32(in, at + 16));
            }
            default -> null;
        };
    }

    private static int need(int at, int body, int size) {
        if (body < size) {
            throw new IllegalArgumentException("body of " + body + " bytes, need " + size);
        }
        return at;
    }

    /** A NUL-terminated name from {@code at} to the end of the request. */
    private static byte[] cString(byte[] in, int at, int length) {
        if (at >= length || in[length - 1] != 0) {
            throw new IllegalArgumentException("name not NUL-terminated");
        }
        return Arrays.copyOfRange(in, at, length - 1);
    }

    private void serveOffloaded(Call call, Channel channel) {
        ReplyBuffer buffer = pool.acquire();
        try {
            serve(call, channel, buffer);
        } finally {
            pool.release(buffer);
            if (inFlight.decrementAndGet() == 0 && afterDrain != null) {
                runAfterDrain();
            }
        }
    }

    private void serve(Call call, Channel channel, ReplyBuffer out) {
        long unique = call.request().unique();
        int length;
        try {
            length = Wire.OUT_HEADER + call.serve(fs, out);
            Replies.header(out.array(), length, 0, unique);
        } catch (FuseException e) {
            int errno = e.errno() > 0 && e.errno() < 512 ? e.errno() : Errno.EIO;
            length = Replies.error(out.array(), unique, errno);
        } catch (RuntimeException | Error e) {
            LOG.log(System.Logger.Level.ERROR, "FUSE " + call.op() + " of node " + call.nodeId() + " failed", e);
            length = Replies.error(out.array(), unique, Errno.EIO);
        }
        send(channel, out, length, unique);
    }

    private void init(byte[] in, int bodyLength, long unique, Channel channel, ReplyBuffer own) {
        Init.Answer answer;
        Init.Offer offer;
        try {
            offer = Init.Offer.decode(in, Wire.IN_HEADER, bodyLength);
            long wanted = InitFlags.WANTED | (fs.wantsPassthrough() ? InitFlags.PASSTHROUGH : 0);
            answer = Init.negotiate(offer, new Init.Limits(wanted, config.maxWrite, config.pageSize,
                    config.maxBackground));
            InitInfo info = new InitInfo(answer.major(), answer.minor(), offer.flags(), answer.flags(),
                    answer.maxReadahead(), answer.maxWrite());
            initFilesystem(info, channel);
        } catch (IllegalArgumentException e) {
            LOG.log(System.Logger.Level.ERROR, "FUSE INIT refused: {0}", e.getMessage());
            replyError(channel, own, unique, Errno.EPROTO);
            initialized.completeExceptionally(new IllegalStateException("FUSE INIT refused: " + e.getMessage()));
            return;
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "filesystem init failed", e);
            replyError(channel, own, unique, Errno.EIO);
            initialized.completeExceptionally(new IllegalStateException("filesystem init failed: " + e, e));
            return;
        }
        if (config.debug) {
            System.err.printf("fuse: INIT kernel %d.%d flags %s; answer %d.%d flags %s max_readahead %d%n",
                    offer.major(), offer.minor(), InitFlags.describe(offer.flags()), answer.major(), answer.minor(),
                    InitFlags.describe(answer.flags()), answer.maxReadahead());
        }
        int length = Wire.OUT_HEADER + answer.encode(own.array(), Wire.OUT_HEADER);
        Replies.header(own.array(), length, 0, unique);
        send(channel, own, length, unique);
    }

    /** {@link FileSystem#init} with what INIT negotiated, and page-cache pushes on {@code channel}. */
    private void initFilesystem(InitInfo info, Channel channel) {
        // Notifications go out on the channel INIT came from, from a thread of their own.
        initChannel = channel;
        startKernelCache(channel);
        BackingFiles backing = (info.negotiatedFlags() & InitFlags.PASSTHROUGH) != 0 ? channel.backingFiles() : null;
        fs.init(info, cacheSwitch, backing);
        initInfo = info;
    }

    private void startKernelCache(Channel channel) {
        KernelCachePusher pusher = new KernelCachePusher(channel, config.maxWrite, "fuse-kernel-cache");
        kernelCache = pusher;
        cacheSwitch.target = pusher;
    }

    /**
     * Readies this server for a hand-over, once the transport has stopped reading requests:
     * waits up to {@code timeoutMillis} for the requests still served on virtual threads, stops
     * page-cache pushes, and returns the filesystem's {@link FileSystem#handOverState}. After a
     * failure (thrown here, or later in the hand-over) call {@link #resumeAfterHandOver}.
     */
    public byte[] pauseForHandOver(long timeoutMillis) throws IOException {
        if (initInfo == null) {
            throw new IOException("the mount has not been initialized yet");
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        try {
            while (inFlight.get() > 0) {
                if (System.nanoTime() - deadline > 0) {
                    throw new IOException(inFlight.get() + " requests still running after " + timeoutMillis + " ms");
                }
                Thread.sleep(2);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted while waiting for requests to end");
        }
        cacheSwitch.target = KernelCache.NONE;
        KernelCachePusher pusher = kernelCache;
        if (pusher != null) {
            pusher.close(); // nothing more goes out on a descriptor about to be handed over
        }
        return fs.handOverState();
    }

    /** Undoes {@link #pauseForHandOver}: page-cache pushes start again. */
    public void resumeAfterHandOver() {
        Channel channel = initChannel;
        if (channel != null && cacheSwitch.target == KernelCache.NONE) {
            startKernelCache(channel);
        }
    }

    /**
     * The new process's side of a hand-over: {@link FileSystem#init} with what the first
     * process negotiated (the kernel sends INIT once per mount), then the filesystem takes the
     * state the first process gave. Requests are served after this returns.
     */
    public void adopt(InitInfo info, Channel channel, byte[] state) throws IOException {
        initFilesystem(info, channel);
        fs.takeOverState(state);
        initialized.complete(info);
    }

    /** Forwards page-cache offers to the pusher of the moment; drops them while a hand-over pauses pushes. */
    private static final class CacheSwitch implements KernelCache {
        volatile KernelCache target = KernelCache.NONE;

        @Override
        public boolean offer(long nodeId, long offset, byte[] data, int from, int length) {
            return target.offer(nodeId, offset, data, from, length);
        }
    }

    private void forget(long nodeId, long nlookup) {
        try {
            fs.forget(nodeId, nlookup);
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "FUSE forget of node " + nodeId + " failed", e);
        }
    }

    private void batchForget(byte[] in, int bodyLength) {
        if (bodyLength < Wire.BATCH_FORGET_IN) {
            return;
        }
        long count = Integer.toUnsignedLong(i32(in, Wire.IN_HEADER));
        long room = (bodyLength - Wire.BATCH_FORGET_IN) / Wire.FORGET_ONE;
        int n = (int) Math.min(count, room);
        long[] nodeIds = new long[n];
        long[] nlookups = new long[n];
        int at = Wire.IN_HEADER + Wire.BATCH_FORGET_IN;
        for (int i = 0; i < n; i++, at += Wire.FORGET_ONE) {
            nodeIds[i] = u64(in, at);
            nlookups[i] = u64(in, at + 8);
        }
        try {
            fs.batchForget(nodeIds, nlookups);
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "FUSE batch forget failed", e);
        }
    }

    private void replyEmpty(Channel channel, ReplyBuffer out, long unique) {
        send(channel, out, Replies.header(out.array(), Wire.OUT_HEADER, 0, unique), unique);
    }

    private void replyError(Channel channel, ReplyBuffer out, long unique, int errno) {
        send(channel, out, Replies.error(out.array(), unique, errno), unique);
    }

    private void send(Channel channel, ReplyBuffer out, int length, long unique) {
        int result = channel.write(out, length);
        if (config.debug) {
            System.err.printf("fuse: -> %d error %d (%d bytes)%s%n", unique, i32(out.array(), 4), length,
                    result == 0 ? "" : ", write failed: " + Errno.name(-result));
        }
        // ENOENT: the request was interrupted or aborted meanwhile; ENODEV: the mount is gone.
        if (result < 0 && result != -Errno.ENOENT && result != -Errno.ENODEV
                && warnedWriteError.compareAndSet(false, true)) {
            LOG.log(System.Logger.Level.WARNING, "FUSE reply write failed: {0} (reported once)", Errno.name(-result));
        }
    }

    /** Calls {@link FileSystem#destroy()} once. */
    public void destroy() {
        if (destroyed.compareAndSet(false, true)) {
            try {
                fs.destroy();
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "filesystem destroy failed", e);
            }
        }
    }

    /**
     * Ends the session: waits up to {@code timeoutMillis} for requests still being served on
     * virtual threads, then destroys the filesystem.
     */
    public void close(long timeoutMillis) {
        close(timeoutMillis, () -> {
        });
    }

    /**
     * {@link #close(long)}, then {@code release} (the transport closes its descriptors there).
     * Requests still running when the wait ends (a fetch that hangs) are not abandoned: the
     * filesystem is destroyed and {@code release} runs when the last of them ends. Closed at
     * once, their late replies went to descriptor numbers that may by then name another file, or
     * another mount's /dev/fuse where a request of the same unique waits; and the filesystem was
     * destroyed under them.
     */
    public void close(long timeoutMillis, Runnable release) {
        initialized.completeExceptionally(new IllegalStateException("the FUSE session ended before INIT"));
        // Only reached when no reader runs, so nothing new is started; wait for the rest.
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        try {
            while (inFlight.get() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        KernelCachePusher pusher = kernelCache;
        if (pusher != null) {
            pusher.close(); // before the transport closes the channel it writes to
        }
        afterDrain = () -> {
            destroy();
            release.run();
        };
        if (inFlight.get() > 0) {
            LOG.log(System.Logger.Level.WARNING, "{0} FUSE requests still running at unmount; the session ends when they do",
                    inFlight.get());
        }
        if (inFlight.get() == 0) { // also if the last one ended between the wait and setting afterDrain
            runAfterDrain();
        }
    }

    private void runAfterDrain() {
        if (drained.compareAndSet(false, true)) {
            afterDrain.run();
        }
    }

    @Override
    public void close() {
        close(10_000);
    }
}
