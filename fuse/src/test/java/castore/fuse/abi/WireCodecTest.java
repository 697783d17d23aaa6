package castore.fuse.abi;

import castore.fuse.api.Attr;
import castore.fuse.api.AttrReply;
import castore.fuse.api.Entry;
import castore.fuse.api.OpenReply;
import castore.fuse.api.StatFs;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static castore.fuse.abi.Wire.i32;
import static castore.fuse.abi.Wire.u64;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Reply encoders against the byte layout of fuse.h (7.45), on plain heap buffers. */
class WireCodecTest {
    private static final Attr ATTR = new Attr(42, 1000, 2, 11, 12, 13, 21, 22, 23, Attr.S_IFREG | 0444, 1, 5, 6, 0, 4096);

    private static byte[] dirty(int size) {
        byte[] b = new byte[size];
        Arrays.fill(b, (byte) 0x5a); // encoders must write every byte they own
        return b;
    }

    private static byte[] slice(byte[] b, int from, int length) {
        return Arrays.copyOfRange(b, from, from + length);
    }

    @Test
    void accessorsAreUnalignedAndInHostByteOrder() {
        byte[] b = dirty(16);
        Wire.putU64(b, 1, 0x0807_0605_0403_0201L);
        Wire.putI32(b, 9, 0x0c0b_0a09);
        Wire.putU16(b, 13, 0xfe0d);
        byte[] expected = java.nio.ByteOrder.nativeOrder() == java.nio.ByteOrder.LITTLE_ENDIAN
                ? new byte[]{0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, (byte) 0xfe, 0x5a}
                : new byte[]{0x5a, 8, 7, 6, 5, 4, 3, 2, 1, 12, 11, 10, 9, (byte) 0xfe, 13, 0x5a};
        assertThat(b).containsExactly(expected);
        assertThat(Wire.u64(b, 1)).isEqualTo(0x0807_0605_0403_0201L);
        assertThat(Wire.u32(b, 9)).isEqualTo(0x0c0b_0a09L);
        assertThat(Wire.u16(b, 13)).isEqualTo(0xfe0d);
        Wire.putI32(b, 9, -2);
        assertThat(Wire.u32(b, 9)).isEqualTo(0xffff_fffeL);
        assertThat(Wire.i32(b, 9)).isEqualTo(-2);
    }

    @Test
    void errorReplyIsExactlySixteenBytesWithNegativeErrno() {
        byte[] out = dirty(64);
        assertThat(Replies.error(out, 0x1234_5678_9abcL, 2)).isEqualTo(16);
        assertThat(i32(out, 0)).isEqualTo(16);
        assertThat(i32(out, 4)).isEqualTo(-2);
        assertThat(u64(out, 8)).isEqualTo(0x1234_5678_9abcL);
    }

    @Test
    void errorOutsideTheKernelsRangeIsRefused() {
        assertThatThrownBy(() -> Replies.error(dirty(16), 2, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Replies.error(dirty(16), 2, 512)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void attrIs88BytesAtTheKernelsOffsets() {
        byte[] out = dirty(100);
        assertThat(Replies.attr(out, 0, ATTR)).isEqualTo(88).isEqualTo(Wire.ATTR);
        assertThat(u64(out, 0)).isEqualTo(42);
        assertThat(u64(out, 8)).isEqualTo(1000);
        assertThat(u64(out, 16)).isEqualTo(2);
        assertThat(u64(out, 24)).isEqualTo(11);
        assertThat(u64(out, 32)).isEqualTo(12);
        assertThat(u64(out, 40)).isEqualTo(13);
        assertThat(i32(out, 48)).isEqualTo(21);
        assertThat(i32(out, 52)).isEqualTo(22);
        assertThat(i32(out, 56)).isEqualTo(23);
        assertThat(i32(out, 60)).isEqualTo(0100444);
        assertThat(i32(out, 64)).isEqualTo(1);
        assertThat(i32(out, 68)).isEqualTo(5);
        assertThat(i32(out, 72)).isEqualTo(6);
        assertThat(i32(out, 76)).isZero();
        assertThat(i32(out, 80)).isEqualTo(4096);
        assertThat(i32(out, 84)).isZero();
    }

    @Test
    void entryOutIs128BytesWithValiditySplitIntoSecondsAndNanos() {
        byte[] out = dirty(140);
        Entry e = new Entry(7, 3, ATTR, 2_500_000_000L, 1_000_000_001L);
        assertThat(Replies.entry(out, 0, e)).isEqualTo(128);
        assertThat(u64(out, 0)).isEqualTo(7);
        assertThat(u64(out, 8)).isEqualTo(3);
        assertThat(u64(out, 16)).isEqualTo(2);
        assertThat(u64(out, 24)).isEqualTo(1);
        assertThat(i32(out, 32)).isEqualTo(500_000_000);
        assertThat(i32(out, 36)).isEqualTo(1);
        assertThat(u64(out, 40)).isEqualTo(42); // fuse_attr.ino
    }

    @Test
    void negativeEntryHasNodeIdZeroAValidityAndZeroedAttributes() {
        byte[] out = dirty(128);
        Replies.entry(out, 0, Entry.negative(Long.MAX_VALUE));
        assertThat(u64(out, 0)).isZero();
        assertThat(u64(out, 16)).isEqualTo(Long.MAX_VALUE / 1_000_000_000L);
        assertThat(slice(out, 40, 88)).containsOnly(0);
    }

    @Test
    void attrOutIs104BytesWithAttrAtSixteen() {
        byte[] out = dirty(104);
        assertThat(Replies.attrOut(out, 0, new AttrReply(ATTR, 3_000_000_007L))).isEqualTo(104);
        assertThat(u64(out, 0)).isEqualTo(3);
        assertThat(i32(out, 8)).isEqualTo(7);
        assertThat(i32(out, 12)).isZero();
        assertThat(u64(out, 16)).isEqualTo(42);
        assertThat(i32(out, 16 + 60)).isEqualTo(0100444);
    }

    @Test
    void openOutIs16BytesWithoutBackingId() {
        byte[] out = dirty(16);
        assertThat(Replies.openOut(out, 0, new OpenReply(99, OpenReply.KEEP_CACHE | OpenReply.CACHE_DIR))).isEqualTo(16);
        assertThat(u64(out, 0)).isEqualTo(99);
        assertThat(i32(out, 8)).isEqualTo(0b1010);
        assertThat(i32(out, 12)).isZero();
    }

    @Test
    void openOutCarriesThePassthroughFlagAndBackingId() {
        byte[] out = dirty(16);
        assertThat(Replies.openOut(out, 0, OpenReply.passthrough(7, 3))).isEqualTo(16);
        assertThat(u64(out, 0)).isEqualTo(7);
        assertThat(i32(out, 8)).isEqualTo(1 << 7);
        assertThat(i32(out, 12)).isEqualTo(3);
    }

    @Test
    void aBackingIdWithoutThePassthroughFlagOrTheFlagWithoutAnIdIsRefused() {
        assertThatThrownBy(() -> new OpenReply(1, OpenReply.KEEP_CACHE, 2)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new OpenReply(1, OpenReply.PASSTHROUGH, 0)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void statfsOutIs80BytesWithZeroedSpare() {
        byte[] out = dirty(80);
        assertThat(Replies.statfsOut(out, 0, new StatFs(1, 2, 3, 4, 5, 4096, 255, 512))).isEqualTo(80);
        assertThat(u64(out, 0)).isEqualTo(1);
        assertThat(u64(out, 32)).isEqualTo(5);
        assertThat(i32(out, 40)).isEqualTo(4096);
        assertThat(i32(out, 44)).isEqualTo(255);
        assertThat(i32(out, 48)).isEqualTo(512);
        assertThat(slice(out, 52, 28)).containsOnly(0);
    }

    @Test
    void xattrSizeAndLseekReplies() {
        byte[] out = dirty(16);
        assertThat(Replies.getxattrOut(out, 0, 37)).isEqualTo(8);
        assertThat(i32(out, 0)).isEqualTo(37);
        assertThat(i32(out, 4)).isZero();
        assertThat(Replies.lseekOut(out, 8, 1L << 40)).isEqualTo(8);
        assertThat(u64(out, 8)).isEqualTo(1L << 40);
    }

    @Test
    void writeTypeOpcodesAreClassified() {
        int[] writes = {Opcode.SETATTR, Opcode.SYMLINK, Opcode.MKNOD, Opcode.MKDIR, Opcode.UNLINK, Opcode.RMDIR,
            Opcode.RENAME, Opcode.LINK, Opcode.WRITE, Opcode.SETXATTR, Opcode.REMOVEXATTR, Opcode.CREATE,
            Opcode.FALLOCATE, Opcode.RENAME2, Opcode.COPY_FILE_RANGE, Opcode.TMPFILE, Opcode.COPY_FILE_RANGE_64};
        for (int op : writes) {
            assertThat(Opcode.isWrite(op)).as(Opcode.name(op)).isTrue();
        }
        for (int op : new int[]{Opcode.LOOKUP, Opcode.READ, Opcode.GETXATTR, Opcode.FLUSH, Opcode.FSYNC, Opcode.INIT}) {
            assertThat(Opcode.isWrite(op)).as(Opcode.name(op)).isFalse();
        }
        assertThat(Opcode.name(44)).isEqualTo("READDIRPLUS");
        assertThat(Opcode.name(4242)).isEqualTo("OPCODE_4242");
    }
}
