package castore.service;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class ChunkSlotsTest {
    private static byte[] filled(int length, int value) {
        byte[] array = new byte[length];
        Arrays.fill(array, (byte) value);
        return array;
    }

    @Test
    void aPutChunkIsCopiedFromItsSlotUntilTheRingPassesIt() {
        var slots = new ChunkSlots(2);
        assertThat(slots.allocated()).isFalse();
        assertThat(slots.copy(0, 4, 0, ByteBuffer.allocate(4))).isEqualTo(-1);

        byte[] first = filled(8, 1); // longer than the chunk: only its first 4 bytes are chunk 0
        assertThat(slots.put(0, first)).isNull();
        assertThat(slots.put(1, filled(6, 2))).isNull();
        ByteBuffer dst = ByteBuffer.allocate(10);
        assertThat(slots.copy(0, 4, 1, dst)).isEqualTo(3);
        assertThat(Arrays.copyOf(dst.array(), dst.position())).containsExactly(1, 1, 1);
        assertThat(slots.copy(1, 5, 0, dst.clear().limit(2))).isEqualTo(2); // as much as fits

        // The third put takes the oldest slot and hands its array back for reuse.
        assertThat(slots.put(2, filled(4, 3))).isSameAs(first);
        assertThat(slots.copy(0, 4, 0, dst.clear())).isEqualTo(-1);
        assertThat(slots.copy(1, 5, 0, dst.clear())).isEqualTo(5);
        assertThat(slots.copy(2, 4, 0, dst.clear())).isEqualTo(4);
        assertThat(Arrays.copyOf(dst.array(), 4)).containsExactly(3, 3, 3, 3);
    }

    @Test
    void aSlotShorterThanTheChunkAskedForIsNotCopied() {
        var slots = new ChunkSlots(1);
        slots.put(7, filled(3, 9));
        assertThat(slots.copy(7, 4, 0, ByteBuffer.allocate(4))).isEqualTo(-1);
        assertThat(slots.copy(7, 3, 0, ByteBuffer.allocate(4))).isEqualTo(3);
    }
}
