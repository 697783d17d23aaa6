package castore.fuse.abi;

import castore.fuse.api.Attr;
import castore.fuse.api.Entry;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import static castore.fuse.abi.Wire.i32;
import static castore.fuse.abi.Wire.u64;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** READDIR / READDIRPLUS record packing: 8-byte padding, whole records only. */
class DirentWriterTest {
    private static byte[] name(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] dirty(int size) {
        byte[] b = new byte[size];
        Arrays.fill(b, (byte) 0x5a);
        return b;
    }

    private static byte[] slice(byte[] b, int from, int length) {
        return Arrays.copyOfRange(b, from, from + length);
    }

    @Test
    void dotDotDotAndHelloPackIntoThreeRecordsOf32Bytes() {
        byte[] out = dirty(256);
        DirentWriter w = new DirentWriter().reset(out, 16, 4096, false);
        assertThat(w.add(1, name("."), 4, 1)).isTrue();
        assertThat(w.add(1, name(".."), 4, 2)).isTrue();
        assertThat(w.add(2, name("hello"), 8, 3)).isTrue();
        assertThat(w.length()).isEqualTo(96);
        int hello = 16 + 64;
        assertThat(u64(out, hello)).isEqualTo(2);
        assertThat(u64(out, hello + 8)).isEqualTo(3);
        assertThat(i32(out, hello + 16)).isEqualTo(5);
        assertThat(i32(out, hello + 20)).isEqualTo(8);
        assertThat(new String(slice(out, hello + 24, 5), StandardCharsets.UTF_8))
                .isEqualTo("hello");
        assertThat(slice(out, hello + 29, 3)).containsOnly(0);
    }

    @Test
    void anEightByteNameNeedsNoPadding() {
        assertThat(DirentWriter.direntSize(8)).isEqualTo(32);
        assertThat(DirentWriter.direntSize(9)).isEqualTo(40);
        assertThat(DirentWriter.direntSize(1)).isEqualTo(32);
        assertThat(DirentWriter.direntplusSize(1)).isEqualTo(160);
        assertThat(DirentWriter.direntplusSize(8)).isEqualTo(160);
        assertThat(DirentWriter.direntplusSize(9)).isEqualTo(168);
    }

    @Test
    void aRecordThatDoesNotFitWholeIsRefusedAndNothingIsWritten() {
        byte[] out = dirty(64);
        DirentWriter w = new DirentWriter().reset(out, 0, 40, false);
        assertThat(w.add(5, name("a"), 8, 1)).isTrue();
        assertThat(w.add(6, name("b"), 8, 2)).isFalse();
        assertThat(w.length()).isEqualTo(32);
        assertThat(out[32]).isEqualTo((byte) 0x5a);
    }

    @Test
    void theSegmentEndAlsoLimits() {
        DirentWriter w = new DirentWriter().reset(dirty(48), 16, 4096, false);
        assertThat(w.add(5, name("a"), 8, 1)).isTrue();
        assertThat(w.add(5, name("b"), 8, 2)).isFalse();
    }

    @Test
    void direntplusCarriesTheEntryThenTheDirentAt128() {
        byte[] out = dirty(400);
        DirentWriter w = new DirentWriter().reset(out, 0, 4096, true);
        Entry e = new Entry(77, 1, Attr.of(1234, Attr.S_IFLNK | 0777, 3, 1, 0, 0), 5_000_000_000L, 6_000_000_000L);
        assertThat(w.addPlus(e, name("link"), 9)).isTrue();
        assertThat(w.length()).isEqualTo(160);
        assertThat(u64(out, 0)).isEqualTo(77);
        assertThat(u64(out, 16)).isEqualTo(5);
        assertThat(u64(out, 128)).isEqualTo(1234); // dirent.ino is the inode number
        assertThat(u64(out, 136)).isEqualTo(9);
        assertThat(i32(out, 144)).isEqualTo(4);
        assertThat(i32(out, 148)).isEqualTo(10); // DT_LNK
        assertThat(new String(slice(out, 152, 4), StandardCharsets.UTF_8)).isEqualTo("link");
        assertThat(slice(out, 156, 4)).containsOnly(0);
    }

    @Test
    void plainEntriesInAPlusReplyHaveAZeroEntrySoTheKernelTakesNoReference() {
        byte[] out = dirty(200);
        DirentWriter w = new DirentWriter().reset(out, 0, 4096, true);
        assertThat(w.add(1, name("."), 4, 1)).isTrue();
        assertThat(w.length()).isEqualTo(160);
        assertThat(slice(out, 0, 128)).containsOnly(0);
        assertThat(u64(out, 128)).isEqualTo(1);
    }

    @Test
    void misuseAndBadNamesAreRefused() {
        DirentWriter plain = new DirentWriter().reset(dirty(400), 0, 400, false);
        Entry e = new Entry(2, 0, Attr.of(2, Attr.S_IFREG, 0, 1, 0, 0), 0, 0);
        assertThatThrownBy(() -> plain.addPlus(e, name("x"), 1)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> plain.add(2, name("a/b"), 8, 1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> plain.add(2, new byte[0], 8, 1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> plain.add(2, new byte[1025], 8, 1)).isInstanceOf(IllegalArgumentException.class);
    }
}
