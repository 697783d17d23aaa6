package castore.fuse.server;

import castore.fuse.abi.InitFlags;
import castore.fuse.abi.Opcode;
import castore.fuse.abi.Wire;
import castore.fuse.api.Errno;
import castore.fuse.api.FileSystem;
import castore.fuse.api.Operation;
import castore.fuse.testing.MemoryFileSystem;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static castore.fuse.abi.Wire.i32;
import static castore.fuse.abi.Wire.u64;
import static org.assertj.core.api.Assertions.assertThat;

/** Request dispatch without the kernel: raw request bytes in, raw reply bytes out. */
class FuseServerTest {
    private static final int MAX_WRITE = 1 << 16;
    private static final int SPREAD_BELOW = FuseServer.SPREAD_READ - 4096;

    private final MemoryFileSystem fs = MemoryFileSystem.builder()
            .file("hello", "hello world")
            .symlink("link", "hello")
            .file("dir/inner", "x")
            .xattr("hello", "user.digest", "b3:abc".getBytes(StandardCharsets.UTF_8))
            .xattr("hello", "user.other", new byte[]{1})
            .offload(Operation.READ)
            .build();
    private final Recorder channel = new Recorder();
    private final FuseServer server = new FuseServer(fs, new FuseServer.Config(MAX_WRITE, 4096, 64, false),
            new BufferPool(FuseServerTest::heapBuffer));
    private final ReplyBuffer own = heapBuffer();
    private long nextUnique = 2;

    private static ReplyBuffer heapBuffer() {
        return new ReplyBuffer(new byte[FuseServer.replyBufferSize(MAX_WRITE)], MemorySegment.NULL);
    }

    /** Replies and notifications as written: one byte array per write. */
    static final class Recorder implements Channel {
        final BlockingQueue<byte[]> replies = new LinkedBlockingQueue<>();
        final BlockingQueue<byte[]> notifications = new LinkedBlockingQueue<>();
        volatile boolean notifiedFromNativeMemory = true;

        @Override
        public int write(ReplyBuffer buffer, int length) {
            replies.add(Arrays.copyOf(buffer.array(), length));
            return 0;
        }

        @Override
        public int notify(MemorySegment message, int length, MemorySegment callState) {
            notifiedFromNativeMemory &= message.isNative() && callState.isNative();
            notifications.add(message.asSlice(0, length).toArray(ValueLayout.JAVA_BYTE));
            return 0;
        }
    }

    @AfterEach
    void close() {
        server.close(1000);
    }

    /** Sends a request and returns its reply (waiting for replies served on virtual threads). */
    private byte[] call(int opcode, long nodeId, byte[] body) throws InterruptedException {
        long unique = send(opcode, nodeId, body);
        byte[] reply = channel.replies.poll(10, TimeUnit.SECONDS);
        assertThat(reply).as("reply to %s", Opcode.name(opcode)).isNotNull();
        assertThat(i32(reply, 0)).as("out header length").isEqualTo(reply.length);
        assertThat(u64(reply, 8)).as("unique").isEqualTo(unique);
        return reply;
    }

    private long send(int opcode, long nodeId, byte[] body) {
        long unique = nextUnique;
        nextUnique += 2;
        ByteBuffer b = ByteBuffer.allocate(Wire.IN_HEADER + body.length).order(ByteOrder.nativeOrder());
        b.putInt(b.capacity()).putInt(opcode).putLong(unique).putLong(nodeId).putInt(1000).putInt(1001).putInt(4242)
                .putInt(0).put(body);
        server.handle(b.array(), b.capacity(), channel, own);
        return unique;
    }

    private static int error(byte[] reply) {
        return i32(reply, 4);
    }

    /** A reply's body, after the out header. */
    private static byte[] body(byte[] reply) {
        return Arrays.copyOfRange(reply, Wire.OUT_HEADER, reply.length);
    }

    private static byte[] cstring(String s) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(s.getBytes(StandardCharsets.UTF_8));
        out.write(0);
        return out.toByteArray();
    }

    private static byte[] body(int size, Object... fields) {
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.nativeOrder());
        for (Object f : fields) {
            switch (f) {
                case Integer i -> b.putInt(i);
                case Long l -> b.putLong(l);
                case byte[] bytes -> b.put(bytes);
                default -> throw new IllegalArgumentException(f.toString());
            }
        }
        return b.array();
    }

    private static byte[] readIn(long fh, long offset, int size) {
        return body(Wire.READ_IN, fh, offset, size);
    }

    private void init() throws InterruptedException {
        byte[] reply = call(Opcode.INIT, 0, body(64, 7, 45, 131072, (int) 0x73fffffbL, 0x5fd));
        assertThat(error(reply)).isZero();
    }

    @Test
    void initRepliesWith64BytesAndTellsTheFilesystem() throws Exception {
        byte[] reply = call(Opcode.INIT, 0, body(64, 7, 45, 131072, (int) 0x73fffffbL, 0x5fd));
        assertThat(reply.length).isEqualTo(16 + 64);
        assertThat(i32(reply, 16)).isEqualTo(7);
        assertThat(i32(reply, 20)).isEqualTo(45);
        assertThat(Wire.u16(reply, 16 + 28)).isEqualTo(16); // max_pages = 64 KiB / 4 KiB
        assertThat(fs.initInfo().negotiatedFlags() & InitFlags.DO_READDIRPLUS).isNotZero();
        assertThat(server.initInfo()).isEqualTo(fs.initInfo());
        assertThat(server.initialized()).isCompletedWithValue(fs.initInfo());
    }

    @Test
    void initFromAnUnsupportedProtocolIsRefusedWithEproto() throws Exception {
        assertThat(error(call(Opcode.INIT, 0, body(64, 7, 12, 0, 0, 0)))).isEqualTo(-Errno.EPROTO);
        assertThat(fs.initInfo()).isNull();
        assertThat(server.initialized()).isCompletedExceptionally();
    }

    @Test
    void lookupFindsAndCountsOrFailsWithEnoent() throws Exception {
        init();
        byte[] hit = call(Opcode.LOOKUP, FileSystem.ROOT_ID, cstring("hello"));
        assertThat(hit.length).isEqualTo(16 + 128);
        assertThat(u64(hit, 16)).isEqualTo(fs.nodeId("hello"));
        assertThat(u64(hit, 16 + 40 + 8)).isEqualTo(11); // attr.size
        assertThat(fs.lookupCount(fs.nodeId("hello"))).isEqualTo(1);

        byte[] miss = call(Opcode.LOOKUP, FileSystem.ROOT_ID, cstring("nope"));
        assertThat(miss.length).isEqualTo(16);
        assertThat(error(miss)).isEqualTo(-Errno.ENOENT);
    }

    @Test
    void forgetAndBatchForgetAreNeverAnswered() throws Exception {
        init();
        long hello = fs.nodeId("hello");
        long inner = fs.nodeId("dir/inner");
        call(Opcode.LOOKUP, FileSystem.ROOT_ID, cstring("hello"));
        call(Opcode.LOOKUP, FileSystem.ROOT_ID, cstring("hello"));
        call(Opcode.LOOKUP, FileSystem.ROOT_ID, cstring("dir"));
        call(Opcode.LOOKUP, fs.nodeId("dir"), cstring("inner"));
        send(Opcode.FORGET, hello, body(8, 1L));
        assertThat(fs.lookupCount(hello)).isEqualTo(1);
        send(Opcode.BATCH_FORGET, 0, body(8 + 32, 2, 0, hello, 1L, inner, 1L));
        assertThat(fs.lookupCount(hello)).isZero();
        assertThat(fs.lookupCount(inner)).isZero();
        assertThat(channel.replies).isEmpty();
    }

    @Test
    void getattrReadlinkAndStatfs() throws Exception {
        init();
        byte[] attr = call(Opcode.GETATTR, FileSystem.ROOT_ID, body(16, 0, 0, 0L));
        assertThat(attr.length).isEqualTo(16 + 104);
        assertThat(i32(attr, 16 + 16 + 60)).isEqualTo(0040555);

        byte[] link = call(Opcode.READLINK, fs.nodeId("link"), new byte[0]);
        assertThat(new String(body(link), StandardCharsets.UTF_8))
                .isEqualTo("hello");
        assertThat(error(call(Opcode.READLINK, fs.nodeId("hello"), new byte[0]))).isEqualTo(-Errno.EINVAL);

        byte[] statfs = call(Opcode.STATFS, FileSystem.ROOT_ID, new byte[0]);
        assertThat(statfs.length).isEqualTo(16 + 80);
        assertThat(i32(statfs, 16 + 44)).isEqualTo(255);
    }

    @Test
    void openReadAndReleaseOnAVirtualThread() throws Exception {
        init();
        long hello = fs.nodeId("hello");
        byte[] open = call(Opcode.OPEN, hello, body(8, 0, 0));
        assertThat(open.length).isEqualTo(32);
        long fh = u64(open, 16);
        byte[] read = call(Opcode.READ, hello, readIn(fh, 6, 4096));
        assertThat(new String(body(read), StandardCharsets.UTF_8))
                .isEqualTo("world");
        assertThat(fs.callingThreads()).contains("virtual");
        byte[] eof = call(Opcode.READ, hello, readIn(fh, 100, 4096));
        assertThat(eof.length).isEqualTo(16);
        assertThat(error(eof)).isZero();
        assertThat(error(call(Opcode.RELEASE, hello, body(24, fh, 0, 0, 0L)))).isZero();
        assertThat(fs.openHandles()).isZero();
    }

    @Test
    void aReadLargerThanTheReplyBufferIsEioNotATruncatedReply() throws Exception {
        init();
        byte[] reply = call(Opcode.READ, fs.nodeId("hello"), readIn(1, 0, MAX_WRITE + 1));
        assertThat(error(reply)).isEqualTo(-Errno.EIO);
    }

    @Test
    void readdirResumesFromTheCookieAndStopsAtTheSize() throws Exception {
        init();
        // Room for two 32-byte records: ".", ".." first, then the rest from cookie 2.
        byte[] first = call(Opcode.READDIR, FileSystem.ROOT_ID, readIn(0, 0, 64 + 8));
        assertThat(first.length).isEqualTo(16 + 64);
        assertThat(u64(first, 16 + 32 + 8)).isEqualTo(2);
        byte[] rest = call(Opcode.READDIR, FileSystem.ROOT_ID, readIn(0, 2, 4096));
        assertThat(rest.length).isEqualTo(16 + 3 * 32);
        assertThat(i32(rest, 16 + 20)).isEqualTo(4); // "dir" is DT_DIR
        byte[] end = call(Opcode.READDIR, FileSystem.ROOT_ID, readIn(0, 5, 4096));
        assertThat(end.length).isEqualTo(16);
    }

    @Test
    void readdirplusCountsTheEntriesItReturnsButNotDots() throws Exception {
        init();
        byte[] reply = call(Opcode.READDIRPLUS, FileSystem.ROOT_ID, readIn(0, 0, 4096));
        assertThat(reply.length).isEqualTo(16 + 5 * 160);
        assertThat(fs.lookupCount(fs.nodeId("hello"))).isEqualTo(1);
        assertThat(fs.lookupCount(FileSystem.ROOT_ID)).isZero();
        assertThat(u64(reply, 16 + 2 * 160)).isEqualTo(fs.nodeId("dir"));
    }

    @Test
    void xattrsProbeTheSizeThenGetTheValueOrErange() throws Exception {
        init();
        long hello = fs.nodeId("hello");
        byte[] probe = call(Opcode.GETXATTR, hello, body(8 + 12, 0, 0, cstring("user.digest")));
        assertThat(probe.length).isEqualTo(16 + 8);
        assertThat(i32(probe, 16)).isEqualTo(6);
        assertThat(error(call(Opcode.GETXATTR, hello, body(8 + 12, 5, 0, cstring("user.digest"))))).isEqualTo(-Errno.ERANGE);
        byte[] value = call(Opcode.GETXATTR, hello, body(8 + 12, 6, 0, cstring("user.digest")));
        assertThat(new String(body(value), StandardCharsets.UTF_8))
                .isEqualTo("b3:abc");
        assertThat(error(call(Opcode.GETXATTR, hello, body(8 + 10, 100, 0, cstring("user.none"))))).isEqualTo(-Errno.ENODATA);

        byte[] listProbe = call(Opcode.LISTXATTR, hello, body(8, 0, 0));
        assertThat(i32(listProbe, 16)).isEqualTo("user.digest\0user.other\0".length());
        assertThat(error(call(Opcode.LISTXATTR, hello, body(8, 3, 0)))).isEqualTo(-Errno.ERANGE);
        byte[] list = call(Opcode.LISTXATTR, hello, body(8, 100, 0));
        assertThat(new String(body(list), StandardCharsets.UTF_8))
                .isEqualTo("user.digest\0user.other\0");
    }

    @Test
    void kernelCacheOffersGoOutAsNotifyStoreFromNativeMemoryInPagePieces() throws Exception {
        init();
        byte[] data = new byte[MAX_WRITE + 8192];
        Arrays.fill(data, (byte) 7);
        data[data.length - 1] = 9;
        long node = fs.nodeId("hello");
        assertThat(fs.kernelCache().offer(node, 4096, data, 0, data.length)).isTrue();
        // Pieces of whole pages that fit, with the 40-byte header, in a max_write reply.
        int piece = MAX_WRITE - 4096;
        long offset = 4096;
        for (int done = 0; done < data.length; ) {
            byte[] message = channel.notifications.poll(10, TimeUnit.SECONDS);
            assertThat(message).as("notification at %d", done).isNotNull();
            int size = Math.min(piece, data.length - done);
            assertThat(i32(message, 0)).isEqualTo(message.length).isEqualTo(40 + size);
            assertThat(i32(message, 4)).isEqualTo(Wire.NOTIFY_STORE);
            assertThat(u64(message, 8)).isZero();
            assertThat(u64(message, 16)).isEqualTo(node);
            assertThat(u64(message, 24)).isEqualTo(offset + done);
            assertThat(i32(message, 32)).isEqualTo(size);
            assertThat(i32(message, 36)).isZero();
            assertThat(Arrays.copyOfRange(message, 40, message.length)).isEqualTo(Arrays.copyOfRange(data, done, done + size));
            done += size;
        }
        assertThat(channel.notifiedFromNativeMemory).isTrue();
        assertThat(channel.replies).isEmpty();
    }

    @Test
    void everyWriteTypeOpcodeGetsErofs() throws Exception {
        init();
        for (int op = 1; op < 60; op++) {
            if (Opcode.isWrite(op)) {
                assertThat(error(call(op, FileSystem.ROOT_ID, new byte[64]))).as(Opcode.name(op)).isEqualTo(-Errno.EROFS);
            }
        }
    }

    @Test
    void unknownAndUnservedOpcodesGetEnosys() throws Exception {
        init();
        for (int op : new int[]{7, 19, 54, 999, 4096, Opcode.FLUSH, Opcode.FSYNC, Opcode.STATX, Opcode.LSEEK, Opcode.IOCTL}) {
            assertThat(error(call(op, FileSystem.ROOT_ID, new byte[24]))).as(Opcode.name(op)).isEqualTo(-Errno.ENOSYS);
        }
    }

    @Test
    void interruptIsAnsweredEnosysUnderItsOwnUnique() throws Exception {
        init();
        long unique = send(Opcode.INTERRUPT, 0, body(8, 40L));
        byte[] reply = channel.replies.poll(10, TimeUnit.SECONDS);
        assertThat(reply.length).isEqualTo(16);
        assertThat(error(reply)).isEqualTo(-Errno.ENOSYS);
        assertThat(u64(reply, 8)).isEqualTo(unique);
    }

    @Test
    void destroyRepliesAndDestroysOnce() throws Exception {
        init();
        byte[] reply = call(Opcode.DESTROY, 0, new byte[0]);
        assertThat(reply.length).isEqualTo(16);
        assertThat(error(reply)).isZero();
        assertThat(fs.isDestroyed()).isTrue();
    }

    @Test
    void malformedRequestsGetEioAndTheServerGoesOn() throws Exception {
        init();
        // LOOKUP whose name lacks its NUL
        assertThat(error(call(Opcode.LOOKUP, FileSystem.ROOT_ID, "hello".getBytes(StandardCharsets.UTF_8))))
                .isEqualTo(-Errno.EIO);
        // READ with a truncated fuse_read_in
        assertThat(error(call(Opcode.READ, fs.nodeId("hello"), new byte[8]))).isEqualTo(-Errno.EIO);
        // a header whose length disagrees with what was read
        byte[] bad = new byte[Wire.IN_HEADER];
        ByteBuffer.wrap(bad).order(ByteOrder.nativeOrder()).putInt(999).putInt(Opcode.GETATTR).putLong(77);
        server.handle(bad, bad.length, channel, own);
        byte[] reply = channel.replies.poll(10, TimeUnit.SECONDS);
        assertThat(error(reply)).isEqualTo(-Errno.EIO);
        assertThat(u64(reply, 8)).isEqualTo(77);
        assertThat(error(call(Opcode.LOOKUP, FileSystem.ROOT_ID, cstring("hello")))).isZero();
    }

    @Test
    void aFilesystemBugBecomesEio() throws Exception {
        init();
        // Node id 12345 does not exist: MemoryFileSystem answers EIO; an unknown node on getattr.
        assertThat(error(call(Opcode.GETATTR, 12345, body(16, 0, 0, 0L)))).isEqualTo(-Errno.EIO);
        FuseServer broken = new FuseServer(new ThrowingFileSystem(), new FuseServer.Config(MAX_WRITE, 4096, 64, false),
                new BufferPool(FuseServerTest::heapBuffer));
        try {
            byte[] req = new byte[Wire.IN_HEADER + 6];
            ByteBuffer.wrap(req).order(ByteOrder.nativeOrder()).putInt(req.length).putInt(Opcode.LOOKUP).putLong(8)
                    .putLong(1).putInt(0).putInt(0).putInt(0).putInt(0).put(cstring("boom!"));
            broken.handle(req, req.length, channel, own);
            byte[] reply = channel.replies.poll(10, TimeUnit.SECONDS);
            assertThat(error(reply)).isEqualTo(-Errno.EIO);
        } finally {
            broken.close(1000);
        }
    }

    /** A transport's turn to read, as the server uses it: what passed it, and whether another reader takes it. */
    private static final class RecordingTurn implements ReadTurn {
        final java.util.List<String> passes = new java.util.ArrayList<>();
        volatile boolean anotherReaderFree;

        @Override
        public boolean pass() {
            passes.add("pass");
            return anotherReaderFree;
        }

        @Override
        public boolean passForWork() {
            passes.add("work");
            return anotherReaderFree;
        }
    }

    @Test
    void quickRequestsKeepTheTurnLargeReadsPassItForWorkAndBlockingOnesPassItOrGoToAVirtualThread() throws Exception {
        MemoryFileSystem plain = MemoryFileSystem.builder()
                .file("small", "x")
                .file("large", new byte[3 * MAX_WRITE])
                .offload(Operation.GETATTR)
                .build();
        FuseServer served = new FuseServer(plain, new FuseServer.Config(MAX_WRITE, 4096, 64, false),
                new BufferPool(FuseServerTest::heapBuffer));
        RecordingTurn turn = new RecordingTurn();
        String reader = Thread.currentThread().getName();
        try {
            java.util.function.BiFunction<Integer, byte[], byte[]> call = (opcode, body) -> {
                long node = opcode == Opcode.LOOKUP ? FileSystem.ROOT_ID : plain.nodeId(opcode == Opcode.GETATTR ? "small" : "large");
                byte[] req = new byte[Wire.IN_HEADER + body.length];
                ByteBuffer.wrap(req).order(ByteOrder.nativeOrder()).putInt(req.length).putInt(opcode).putLong(nextUnique += 2)
                        .putLong(node).putInt(0).putInt(0).putInt(0).putInt(0).put(body);
                served.handle(req, req.length, channel, own, turn);
                try {
                    return channel.replies.poll(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
            };
            assertThat(error(call.apply(Opcode.LOOKUP, cstring("small")))).isZero();
            assertThat(error(call.apply(Opcode.READ, readIn(0, 0, SPREAD_BELOW)))).isZero();
            assertThat(turn.passes).as("quick requests and small READs keep the turn").isEmpty();
            assertThat(plain.callingThreads()).containsExactly(reader);

            byte[] large = call.apply(Opcode.READ, readIn(0, 0, FuseServer.SPREAD_READ));
            assertThat(large.length).isEqualTo(Wire.OUT_HEADER + FuseServer.SPREAD_READ);
            assertThat(turn.passes).as("a large READ passes the turn for its work").containsExactly("work");

            turn.anotherReaderFree = true;
            assertThat(error(call.apply(Opcode.GETATTR, body(16, 0, 0, 0L)))).isZero();
            assertThat(turn.passes).containsExactly("work", "pass");
            assertThat(plain.callingThreads()).as("passed: served on the reader").containsExactly(reader);

            turn.anotherReaderFree = false;
            assertThat(error(call.apply(Opcode.GETATTR, body(16, 0, 0, 0L)))).isZero();
            assertThat(turn.passes).containsExactly("work", "pass", "pass");
            assertThat(plain.callingThreads()).as("nobody took the turn: a virtual thread serves it").contains("virtual");
        } finally {
            served.close(1000);
        }
    }

    @Test
    void aSymlinkTargetLongerThanTheKernelTakesIsENAMETOOLONG() throws Exception {
        // The kernel takes a page less one byte and turns a longer answer into EIO (and the write
        // into an error the server would log): past PATH_MAX's bound it is ENAMETOOLONG, unwritten.
        MemoryFileSystem links = MemoryFileSystem.builder().symlink("longest", "t".repeat(4095)).symlink("toolong", "t".repeat(5000)).build();
        FuseServer served = new FuseServer(links, new FuseServer.Config(MAX_WRITE, 4096, 64, false), new BufferPool(FuseServerTest::heapBuffer));
        try {
            java.util.function.LongFunction<byte[]> readlink = node -> {
                long unique = nextUnique;
                nextUnique += 2;
                ByteBuffer b = ByteBuffer.allocate(Wire.IN_HEADER).order(ByteOrder.nativeOrder());
                b.putInt(b.capacity()).putInt(Opcode.READLINK).putLong(unique).putLong(node).putInt(1000).putInt(1001).putInt(4242).putInt(0);
                served.handle(b.array(), b.capacity(), channel, own);
                try {
                    return channel.replies.poll(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
            };
            assertThat(body(readlink.apply(links.nodeId("longest")))).hasSize(4095);
            byte[] tooLong = readlink.apply(links.nodeId("toolong"));
            assertThat(tooLong).hasSize(16);
            assertThat(error(tooLong)).isEqualTo(-Errno.ENAMETOOLONG);
        } finally {
            served.close(1000);
        }
    }

    @Test
    void aRequestStillRunningAtCloseKeepsTheFilesystemAndTheDescriptorsUntilItEnds() throws Exception {
        init();
        long hello = fs.nodeId("hello");
        java.util.concurrent.CountDownLatch gate = new java.util.concurrent.CountDownLatch(1);
        fs.gateReads("hello", gate); // a fetch that hangs past close's wait
        send(Opcode.READ, hello, readIn(0, 0, 5));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (fs.blockedReads() == 0 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertThat(fs.blockedReads()).isEqualTo(1);
        var released = new java.util.concurrent.atomic.AtomicInteger();
        server.close(50, released::incrementAndGet);
        assertThat(fs.isDestroyed()).as("destroyed under a running read").isFalse();
        assertThat(released).as("descriptors released under a running read").hasValue(0);
        gate.countDown();
        byte[] reply = channel.replies.poll(10, TimeUnit.SECONDS);
        assertThat(reply).as("the late reply, on a descriptor still open").isNotNull();
        assertThat(body(reply)).isEqualTo("hello".getBytes(StandardCharsets.UTF_8));
        deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (released.get() == 0 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertThat(released).as("released once, when it ended").hasValue(1);
        assertThat(fs.isDestroyed()).isTrue();
    }

    /** Every lookup fails with an unchecked exception. */
    static final class ThrowingFileSystem implements FileSystem {
        @Override
        public boolean mayBlock(Operation op, long nodeId) {
            return false;
        }

        @Override
        public castore.fuse.api.Entry lookup(castore.fuse.api.Request request, long parent, byte[] name) {
            throw new IllegalStateException("bug");
        }

        @Override
        public void forget(long nodeId, long nlookup) {
        }

        @Override
        public castore.fuse.api.AttrReply getattr(castore.fuse.api.Request request, long nodeId) {
            throw new UnsupportedOperationException();
        }

        @Override
        public byte[] readlink(castore.fuse.api.Request request, long nodeId) {
            throw new UnsupportedOperationException();
        }

        @Override
        public castore.fuse.api.OpenReply open(castore.fuse.api.Request request, long nodeId, int flags) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void read(castore.fuse.api.Request request, long nodeId, long fh, long offset, ByteBuffer dst) {
            throw new UnsupportedOperationException();
        }

        @Override
        public castore.fuse.api.OpenReply opendir(castore.fuse.api.Request request, long nodeId) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void readdir(castore.fuse.api.Request request, long nodeId, long fh, long offset, boolean plus,
                            castore.fuse.api.DirectorySink sink) {
            throw new UnsupportedOperationException();
        }

        @Override
        public castore.fuse.api.StatFs statfs(castore.fuse.api.Request request, long nodeId) {
            throw new UnsupportedOperationException();
        }

        @Override
        public byte[] getxattr(castore.fuse.api.Request request, long nodeId, byte[] name) {
            throw new UnsupportedOperationException();
        }

        @Override
        public byte[] listxattr(castore.fuse.api.Request request, long nodeId) {
            throw new UnsupportedOperationException();
        }
    }
}
