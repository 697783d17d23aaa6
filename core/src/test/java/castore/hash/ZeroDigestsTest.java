package castore.hash;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ZeroDigestsTest {
    @Test
    void digestsAreThoseOfZeroBytesOfEachLength() {
        for (int length : new int[]{0, 1, 1023, 1024, 1025, 65_536, 65_537, 524_288, 300_001}) {
            assertThat(ZeroDigests.of(length)).as("%d zeros", length).isEqualTo(Blake3.digest(new byte[length]));
            assertThat(ZeroDigests.of(length)).as("remembered").isEqualTo(Blake3.digest(new byte[length]));
        }
    }

    @Test
    void zerosAreToldFromAnyOtherByteAcrossTheComparedBlocks() {
        byte[] data = new byte[200_000];
        assertThat(ZeroDigests.isZeros(data, 0, data.length)).isTrue();
        assertThat(ZeroDigests.isZeros(data, 3, 0)).isTrue();
        for (int at : new int[]{0, 1, 65_535, 65_536, 65_537, 131_072 + 9, data.length - 1}) {
            data[at] = (byte) 0x80;
            assertThat(ZeroDigests.isZeros(data, 0, data.length)).as("a byte at %d", at).isFalse();
            assertThat(ZeroDigests.isZeros(data, at + 1, data.length - at - 1)).as("after it").isTrue();
            if (at > 0) {
                assertThat(ZeroDigests.isZeros(data, 0, at)).as("before it").isTrue();
            }
            data[at] = 0;
        }
    }
}
