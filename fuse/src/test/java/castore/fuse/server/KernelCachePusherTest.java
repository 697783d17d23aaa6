package castore.fuse.server;

import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.abi.Wire;
import castore.fuse.api.Errno;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The pusher against a channel that records its notifications and writes them only when told to. */
class KernelCachePusherTest {
    private static final int MAX_WRITE = 1 << 20;
    private static final int HEADER = Wire.OUT_HEADER + Wire.NOTIFY_STORE_OUT;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One notification as written: node, file offset, content. */
    private record Store(long node, long offset, byte[] content) {
    }

    /** Holds every notify until a permit is released; answers ENOENT for {@link #refuse}'s node. */
    private static final class GatedChannel implements Channel {
        final Semaphore permits = new Semaphore(0);
        final List<Store> written = new ArrayList<>();
        volatile long refuse = -1;
        volatile long fail = -1;

        @Override
        public int write(ReplyBuffer buffer, int length) {
            throw new AssertionError("the pusher writes no replies");
        }

        @Override
        public int notify(MemorySegment message, int length, MemorySegment callState) {
            permits.acquireUninterruptibly();
            assertThat(message.get(U32, 0)).as("the message's length").isEqualTo(length);
            assertThat(message.get(U32, 4)).as("notify code").isEqualTo(Wire.NOTIFY_STORE);
            long node = message.get(U64, Wire.OUT_HEADER);
            long offset = message.get(U64, Wire.OUT_HEADER + 8);
            int size = message.get(U32, Wire.OUT_HEADER + 16);
            assertThat(size).isEqualTo(length - HEADER);
            if (node == fail) {
                throw new IllegalStateException("a channel that throws");
            }
            byte[] content = message.asSlice(HEADER, size).toArray(ValueLayout.JAVA_BYTE);
            synchronized (written) {
                written.add(new Store(node, offset, content));
            }
            return node == refuse ? -Errno.ENOENT : 0;
        }

        List<Store> written() {
            synchronized (written) {
                return List.copyOf(written);
            }
        }
    }

    private static byte[] random(int length, long seed) {
        byte[] data = new byte[length];
        new Random(seed).nextBytes(data);
        return data;
    }

    private static void awaitWritten(GatedChannel channel, int count) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (channel.written().size() < count && System.nanoTime() < deadline) {
            Thread.sleep(2);
        }
        assertThat(channel.written()).hasSize(count);
    }

    private static boolean eventually(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(2);
        }
        return true;
    }

    @Test
    void aChannelThatThrowsDoesNotEndTheWriterNorKeepItsMessages() throws Exception {
        var channel = new GatedChannel();
        channel.fail = 3;
        try (var pusher = new KernelCachePusher(channel, MAX_WRITE, "test-kernel-cache")) {
            byte[] piece = random(KernelCachePusher.PIECE, 4);
            channel.permits.release(1000);
            for (int i = 0; i < 3 * KernelCachePusher.PIECES; i++) {
                long offset = (long) i * piece.length;
                assertThat(eventually(() -> pusher.offer(3, offset, piece, 0, piece.length))).as("offer " + i).isTrue();
            }
            assertThat(eventually(() -> pusher.offer(4, 0, piece, 0, 4096))).isTrue();
            awaitWritten(channel, 1);
            assertThat(channel.written().getFirst().node()).isEqualTo(4);
        }
    }

    @Test
    void anOfferIsCopiedBeforeItReturnsSoTheCallerMayReuseItsArray() throws Exception {
        var channel = new GatedChannel();
        try (var pusher = new KernelCachePusher(channel, MAX_WRITE, "test-kernel-cache")) {
            byte[] data = random(3 * KernelCachePusher.PIECE + 8192, 1);
            byte[] original = data.clone();
            assertThat(pusher.offer(7, 1 << 20, data, 4096, data.length - 4096)).isTrue();
            Arrays.fill(data, (byte) 0); // the caller's buffer, reused at once
            channel.permits.release(100);
            awaitWritten(channel, 4);
            var stores = channel.written();
            long at = 1 << 20;
            int from = 4096;
            for (Store s : stores) {
                assertThat(s.node()).isEqualTo(7);
                assertThat(s.offset()).isEqualTo(at);
                assertThat(s.content()).isEqualTo(Arrays.copyOfRange(original, from, from + s.content().length));
                at += s.content().length;
                from += s.content().length;
            }
            assertThat(from).isEqualTo(data.length);
            assertThat(stores.getFirst().content()).hasSize(KernelCachePusher.PIECE);
            assertThat(pusher.pushedBytes()).isEqualTo(data.length - 4096);
        }
    }

    @Test
    void offersBeyondTheMessagesAtHandAreDroppedUntilThoseAreWritten() throws Exception {
        var channel = new GatedChannel();
        try (var pusher = new KernelCachePusher(channel, MAX_WRITE, "test-kernel-cache")) {
            byte[] piece = random(KernelCachePusher.PIECE, 2);
            for (int i = 0; i < KernelCachePusher.PIECES; i++) {
                assertThat(pusher.offer(1, (long) i * piece.length, piece, 0, piece.length)).as("offer " + i).isTrue();
            }
            assertThat(pusher.offer(1, 0, piece, 0, 4096)).as("every message is waiting to be written").isFalse();
            // A misaligned offer and an empty one are refused whatever the state.
            assertThat(pusher.offer(1, 100, piece, 0, 4096)).isFalse();
            assertThat(pusher.offer(1, 0, piece, 0, 0)).isFalse();
            channel.permits.release(KernelCachePusher.PIECES);
            awaitWritten(channel, KernelCachePusher.PIECES);
            // The writer gives the last message back just after its write.
            assertThat(eventually(() -> pusher.offer(2, 0, piece, 0, 4096))).as("messages came back").isTrue();
            channel.permits.release();
            awaitWritten(channel, KernelCachePusher.PIECES + 1);
            assertThat(channel.written().getLast().node()).isEqualTo(2);
        }
    }

    @Test
    void anOfferLargerThanEveryMessageTogetherPushesWhatTheyHold() throws Exception {
        var channel = new GatedChannel();
        try (var pusher = new KernelCachePusher(channel, MAX_WRITE, "test-kernel-cache")) {
            // A chunk of a remote store can be larger than 4 MiB: such an offer never found
            // enough free messages and was dropped every time.
            byte[] data = random((KernelCachePusher.PIECES + 3) * KernelCachePusher.PIECE + 100, 4);
            assertThat(pusher.offer(3, 8192, data, 0, data.length)).isTrue();
            channel.permits.release(100);
            awaitWritten(channel, KernelCachePusher.PIECES);
            Thread.sleep(50);
            var stores = channel.written();
            assertThat(stores).hasSize(KernelCachePusher.PIECES);
            long at = 8192;
            for (Store s : stores) {
                assertThat(s.offset()).isEqualTo(at);
                assertThat(s.content()).isEqualTo(Arrays.copyOfRange(data, (int) (at - 8192), (int) (at - 8192) + KernelCachePusher.PIECE));
                at += s.content().length;
            }
        }
    }

    @Test
    void aRefusedPieceEndsItsOfferButNotTheNext() throws Exception {
        var channel = new GatedChannel();
        channel.refuse = 5;
        try (var pusher = new KernelCachePusher(channel, MAX_WRITE, "test-kernel-cache")) {
            byte[] data = random(2 * KernelCachePusher.PIECE, 3);
            assertThat(pusher.offer(5, 0, data, 0, data.length)).isTrue();
            assertThat(pusher.offer(6, 0, data, 0, 4096)).isTrue();
            channel.permits.release(100);
            awaitWritten(channel, 2);
            Thread.sleep(50);
            assertThat(channel.written()).extracting(Store::node).containsExactly(5L, 6L);
            assertThat(pusher.pushedBytes()).isEqualTo(4096);
        }
    }
}
