package castore.fuse.server;

import castore.fuse.abi.Init;
import castore.fuse.abi.Opcode;
import castore.fuse.abi.Wire;
import castore.fuse.api.Errno;
import castore.fuse.api.FileSystem;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Plays the kernel's side of /dev/fuse for a {@link FuseServer} in this process: encodes each
 * request as the kernel does, hands it to the server as a reader thread would, and waits for the
 * reply (a server may answer on another thread). It runs a filesystem's whole request path
 * without a mount: for a mount's JIT warm-up and for the launcher's AOT training. Page-cache
 * pushes (FUSE_NOTIFY_STORE) are accepted and dropped. Like the kernel, it stops sending OPEN or
 * OPENDIR once the filesystem has answered ENOSYS (zero-message opens) and sends RELEASE for every
 * open that succeeded. Every request is served by the calling thread itself, including those that
 * may block (none is handed to a virtual thread), so all of it runs at that thread's priority; a
 * request returns when the filesystem has answered it (a filesystem that never answers blocks the
 * caller, as a mount's reader would be). One caller at a time; {@link #close()} ends the session.
 */
public final class KernelSimulator implements Channel, AutoCloseable {
    /** For replies a filesystem sends from another thread after returning (the reply normally comes first). */
    private static final long REPLY_TIMEOUT_SECONDS = 30;
    /** What kernel 6.18 offers in INIT: flags, then flags2 (seen on this machine, docs/fuse.md "INIT"). */
    private static final int OFFERED_FLAGS = 0x73fffffb;
    private static final int OFFERED_FLAGS2 = 0x5fd;
    /** "The caller serves it itself": the turn is never handed to a virtual thread. */
    private static final ReadTurn SERVE_HERE = () -> true;

    private final FuseServer server;
    private final int maxWrite;
    private final byte[] request;
    private final ReplyBuffer own;
    /** Replies awaited, by unique; READ replies are kept as their header only (data is counted, not copied). */
    private final Map<Long, Awaited> pending = new ConcurrentHashMap<>();
    /** Even, as the kernel's (bit 0 marks an interrupt). */
    private long unique = 2;
    private boolean opensUnsupported;
    private boolean opendirsUnsupported;

    private KernelSimulator(FuseServer server, int maxWrite, ReplyBuffer own) {
        this.server = server;
        this.maxWrite = maxWrite;
        this.request = new byte[FuseServer.readBufferSize(maxWrite)];
        this.own = own;
    }

    /** A reply that carried an error: {@link #errno()} is the positive errno. */
    public static final class ErrorReply extends IOException {
        private final int errno;

        ErrorReply(int opcode, long node, int errno) {
            super("FUSE " + Opcode.name(opcode) + " of node " + node + " failed: " + Errno.name(errno), null);
            this.errno = errno;
        }

        /** Expected outcomes (ENOENT, ENOSYS) on a hot path: no stack trace. */
        @Override
        public synchronized Throwable fillInStackTrace() {
            return this;
        }

        public int errno() {
            return errno;
        }
    }

    /**
     * Serves {@code fs} as a mount with this {@code maxWrite} would, and sends INIT with what
     * kernel 6.18 offers; returns once the filesystem is initialised. Close the result.
     */
    public static KernelSimulator start(FileSystem fs, int maxWrite) throws IOException {
        var pool = new BufferPool(() -> new ReplyBuffer(new byte[FuseServer.replyBufferSize(maxWrite)], MemorySegment.NULL));
        var server = new FuseServer(fs, new FuseServer.Config(maxWrite, 4096, 64, false), pool);
        var kernel = new KernelSimulator(server, maxWrite, pool.acquire());
        byte[] init = new byte[Wire.INIT_IN];
        Wire.putI32(init, 0, Init.MAJOR);
        Wire.putI32(init, 4, Init.MINOR);
        Wire.putI32(init, 8, maxWrite);   // max_readahead
        Wire.putI32(init, 12, OFFERED_FLAGS);
        Wire.putI32(init, 16, OFFERED_FLAGS2);
        boolean ready = false;
        try {
            kernel.call(Opcode.INIT, 0, init);
            server.initialized().get(REPLY_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            ready = true;
            return kernel;
        } catch (ExecutionException | TimeoutException e) {
            throw new IOException("the filesystem did not finish INIT", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted during INIT", e);
        } finally {
            if (!ready) {
                kernel.close();
            }
        }
    }

    /** Requests the server has received so far (INIT and FORGETs included). */
    public long requestsServed() {
        return server.requestsReceived();
    }

    /** Ends the session as an unmount does: stops the server's helpers and destroys the filesystem (once). */
    @Override
    public void close() {
        server.close(REPLY_TIMEOUT_SECONDS * 1000);
    }

    /** Sends one request; returns the reply's body, or throws {@link ErrorReply}. Null for requests without reply. */
    public byte[] call(int opcode, long node, byte[] body) throws IOException {
        byte[] reply = send(opcode, node, body);
        if (reply == null) {
            return null;
        }
        throwIfError(opcode, node, reply);
        return Arrays.copyOfRange(reply, Wire.OUT_HEADER, reply.length);
    }

    /** Throws {@link ErrorReply} if the reply (or its out header) carries an error. */
    private static void throwIfError(int opcode, long node, byte[] reply) throws ErrorReply {
        int error = Wire.i32(reply, 4);
        if (error != 0) {
            throw new ErrorReply(opcode, node, -error);
        }
    }

    /** LOOKUP: the node id of {@code name} in {@code parent}, or 0 when it does not exist (ENOENT or a negative entry). */
    public long lookup(long parent, String name) throws IOException {
        try {
            return Wire.u64(call(Opcode.LOOKUP, parent, cString(name)), 0);
        } catch (ErrorReply e) {
            if (e.errno() == Errno.ENOENT) {
                return 0;
            }
            throw e;
        }
    }

    /** FORGET: drops {@code count} lookups of {@code node}. */
    public void forget(long node, long count) throws IOException {
        byte[] body = new byte[Wire.FORGET_IN];
        Wire.putU64(body, 0, count);
        send(Opcode.FORGET, node, body);
    }

    /** BATCH_FORGET, as the kernel sends under memory pressure: drops {@code counts[i]} lookups of {@code nodes[i]}. */
    public void batchForget(long[] nodes, long[] counts) throws IOException {
        byte[] body = new byte[Wire.BATCH_FORGET_IN + nodes.length * Wire.FORGET_ONE];
        Wire.putI32(body, 0, nodes.length);
        for (int i = 0; i < nodes.length; i++) {
            Wire.putU64(body, Wire.BATCH_FORGET_IN + i * Wire.FORGET_ONE, nodes[i]);
            Wire.putU64(body, Wire.BATCH_FORGET_IN + i * Wire.FORGET_ONE + 8, counts[i]);
        }
        send(Opcode.BATCH_FORGET, 0, body);
    }

    public byte[] getattr(long node) throws IOException {
        return call(Opcode.GETATTR, node, new byte[Wire.GETATTR_IN]);
    }

    public byte[] readlink(long node) throws IOException {
        return call(Opcode.READLINK, node, new byte[0]);
    }

    public byte[] statfs(long node) throws IOException {
        return call(Opcode.STATFS, node, new byte[0]);
    }

    /** ACCESS with {@code mask} (R_OK 4, W_OK 2, X_OK 1); throws {@link ErrorReply} if refused. */
    public void access(long node, int mask) throws IOException {
        byte[] body = new byte[Wire.ACCESS_IN];
        Wire.putI32(body, 0, mask);
        call(Opcode.ACCESS, node, body);
    }

    /** GETXATTR of {@code name} with a buffer of {@code size} bytes (0: the size probe). */
    public byte[] getxattr(long node, String name, int size) throws IOException {
        byte[] nameBytes = cString(name);
        byte[] body = new byte[Wire.GETXATTR_IN + nameBytes.length];
        Wire.putI32(body, 0, size);
        System.arraycopy(nameBytes, 0, body, Wire.GETXATTR_IN, nameBytes.length);
        return call(Opcode.GETXATTR, node, body);
    }

    public byte[] listxattr(long node, int size) throws IOException {
        byte[] body = new byte[Wire.GETXATTR_IN];
        Wire.putI32(body, 0, size);
        return call(Opcode.LISTXATTR, node, body);
    }

    /**
     * Lists a directory as the kernel does for getdents: OPENDIR, READDIRPLUS with buffers of
     * {@code bufferSize} bytes resumed at each last cookie until an empty reply, RELEASEDIR.
     * Returns the node ids the listing looked up (each needs a FORGET), "." and ".." excluded.
     */
    public List<Long> readDirectoryPlus(long node, int bufferSize) throws IOException {
        List<Long> found = new ArrayList<>();
        listDirectory(Opcode.READDIRPLUS, node, bufferSize, found);
        return found;
    }

    /** As {@link #readDirectoryPlus}, with plain READDIR (no lookups); returns the number of entries. */
    public int readDirectory(long node, int bufferSize) throws IOException {
        return listDirectory(Opcode.READDIR, node, bufferSize, null);
    }

    private int listDirectory(int opcode, long node, int bufferSize, List<Long> found) throws IOException {
        OptionalLong fh = open(Opcode.OPENDIR, node);
        int entries = 0;
        try {
            long cookie = 0;
            while (true) {
                byte[] data = call(opcode, node, readBody(fh.orElse(0), cookie, bufferSize));
                if (data.length == 0) {
                    return entries;
                }
                for (int at = 0; at < data.length; ) {
                    int dirent = opcode == Opcode.READDIRPLUS ? at + Wire.ENTRY_OUT : at;
                    int nameLength = Wire.i32(data, dirent + 16);
                    cookie = Wire.u64(data, dirent + 8);
                    long nodeId = opcode == Opcode.READDIRPLUS ? Wire.u64(data, at) : 0;
                    if (found != null && nodeId != 0 && !isDotOrDotDot(data, dirent + Wire.DIRENT, nameLength)) {
                        found.add(nodeId);
                    }
                    entries++;
                    at = dirent + ((Wire.DIRENT + nameLength + 7) & ~7);
                }
            }
        } finally {
            release(Opcode.RELEASEDIR, node, fh);
        }
    }

    /** Reads a whole file from the start in requests of {@code size} bytes (at most max_write); returns its length. */
    public long readFile(long node, int size) throws IOException {
        int request = Math.min(size, maxWrite);
        OptionalLong fh = open(Opcode.OPEN, node);
        try {
            for (long offset = 0; ; ) {
                int n = read(node, fh.orElse(0), offset, request);
                offset += n;
                if (n < request) {
                    return offset;
                }
            }
        } finally {
            release(Opcode.RELEASE, node, fh);
        }
    }

    /** Reads at each of {@code offsets}, {@code size} bytes each, through one open of the file. */
    public void readAt(long node, long[] offsets, int size) throws IOException {
        OptionalLong fh = open(Opcode.OPEN, node);
        try {
            for (long offset : offsets) {
                read(node, fh.orElse(0), offset, size);
            }
        } finally {
            release(Opcode.RELEASE, node, fh);
        }
    }

    /** One READ; the number of bytes it returned. */
    private int read(long node, long fh, long offset, int size) throws IOException {
        byte[] header = send(Opcode.READ, node, readBody(fh, offset, size));
        throwIfError(Opcode.READ, node, header);
        return Wire.i32(header, 0) - Wire.OUT_HEADER;
    }

    /**
     * OPEN or OPENDIR: the handle (0 is a handle too), or empty when the filesystem lets the
     * kernel open by itself (ENOSYS, zero-message opens: from then on the kernel sends no more of
     * that opcode, uses handle 0 and sends no release).
     */
    private OptionalLong open(int opcode, long node) throws IOException {
        boolean dir = opcode == Opcode.OPENDIR;
        if (dir ? opendirsUnsupported : opensUnsupported) {
            return OptionalLong.empty();
        }
        try {
            return OptionalLong.of(Wire.u64(call(opcode, node, new byte[Wire.OPEN_IN]), 0));
        } catch (ErrorReply e) {
            if (e.errno() != Errno.ENOSYS) {
                throw e;
            }
            if (dir) {
                opendirsUnsupported = true;
            } else {
                opensUnsupported = true;
            }
            return OptionalLong.empty();
        }
    }

    private void release(int opcode, long node, OptionalLong fh) throws IOException {
        if (fh.isPresent()) {
            byte[] body = new byte[Wire.RELEASE_IN];
            Wire.putU64(body, 0, fh.getAsLong());
            call(opcode, node, body);
        }
    }

    /** DESTROY, as at unmount: the filesystem lets go of what it holds. */
    public void destroy() throws IOException {
        call(Opcode.DESTROY, 0, new byte[0]);
    }

    private byte[] send(int opcode, long node, byte[] body) throws IOException {
        long id = unique;
        unique += 2;
        int length = Wire.IN_HEADER + body.length;
        Arrays.fill(request, 0, Wire.IN_HEADER, (byte) 0);
        Wire.putI32(request, Wire.IN_LEN, length);
        Wire.putI32(request, Wire.IN_OPCODE, opcode);
        Wire.putU64(request, Wire.IN_UNIQUE, id);
        Wire.putU64(request, Wire.IN_NODEID, node);
        System.arraycopy(body, 0, request, Wire.IN_HEADER, body.length);
        if (Opcode.isNoReply(opcode)) {
            server.handle(request, length, this, own, SERVE_HERE);
            return null;
        }
        CompletableFuture<byte[]> reply = new CompletableFuture<>();
        pending.put(id, new Awaited(opcode == Opcode.READ, reply));
        server.handle(request, length, this, own, SERVE_HERE);
        try {
            return reply.get(REPLY_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException e) {
            throw new IOException("no reply to FUSE " + Opcode.name(opcode) + " of node " + node, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted waiting for FUSE " + Opcode.name(opcode), e);
        } finally {
            pending.remove(id);
        }
    }

    @Override
    public int write(ReplyBuffer buffer, int n) {
        Awaited waiting = pending.remove(Wire.u64(buffer.array(), 8));
        if (waiting == null) {
            return -Errno.ENOENT; // as the kernel answers for a request it no longer waits for
        }
        waiting.reply().complete(Arrays.copyOf(buffer.array(), waiting.headerOnly() ? Wire.OUT_HEADER : n));
        return 0;
    }

    @Override
    public int notify(MemorySegment message, int n, MemorySegment callState) {
        return 0;
    }

    /** A request waiting for its reply; {@code headerOnly}: keep just the out header (its length field says how much came). */
    private record Awaited(boolean headerOnly, CompletableFuture<byte[]> reply) { }

    private static boolean isDotOrDotDot(byte[] data, int name, int length) {
        return data[name] == '.' && (length == 1 || (length == 2 && data[name + 1] == '.'));
    }

    private static byte[] readBody(long fh, long offset, int size) {
        byte[] body = new byte[Wire.READ_IN];
        Wire.putU64(body, 0, fh);
        Wire.putU64(body, 8, offset);
        Wire.putI32(body, 16, size);
        return body;
    }

    private static byte[] cString(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        return Arrays.copyOf(b, b.length + 1);
    }
}
