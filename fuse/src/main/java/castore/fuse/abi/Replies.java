package castore.fuse.abi;

import castore.fuse.api.Attr;
import castore.fuse.api.AttrReply;
import castore.fuse.api.Entry;
import castore.fuse.api.OpenReply;
import castore.fuse.api.StatFs;

import static castore.fuse.abi.Wire.putI32;
import static castore.fuse.abi.Wire.putU64;

/**
 * Encoders of reply structs. Each writes at {@code offset} of {@code out} and returns the number
 * of bytes written; a whole reply is {@link #header} plus one body.
 */
public final class Replies {
    private static final long NANOS_PER_SECOND = 1_000_000_000L;

    private Replies() {
    }

    /** fuse_out_header: total length, 0 or -errno, and the request's unique. */
    public static int header(byte[] out, int length, int error, long unique) {
        putI32(out, 0, length);
        putI32(out, 4, error);
        putU64(out, 8, unique);
        return Wire.OUT_HEADER;
    }

    /**
     * The header of a FUSE_NOTIFY_STORE notification for {@code size} bytes of node {@code nodeId}
     * at {@code offset}; the data follows at the returned length.
     */
    public static int notifyStore(byte[] out, long nodeId, long offset, int size) {
        int length = Wire.OUT_HEADER + Wire.NOTIFY_STORE_OUT;
        header(out, length + size, Wire.NOTIFY_STORE, 0);
        putU64(out, Wire.OUT_HEADER, nodeId);
        putU64(out, Wire.OUT_HEADER + 8, offset);
        putI32(out, Wire.OUT_HEADER + 16, size);
        putI32(out, Wire.OUT_HEADER + 20, 0);
        return length;
    }

    /** A complete error reply: exactly 16 bytes, error = -errno with errno in 1..511. */
    public static int error(byte[] out, long unique, int errno) {
        if (errno <= 0 || errno >= 512) {
            throw new IllegalArgumentException("errno out of range: " + errno);
        }
        return header(out, Wire.OUT_HEADER, -errno, unique);
    }

    /** fuse_attr (88 bytes). */
    public static int attr(byte[] out, int offset, Attr a) {
        putU64(out, offset, a.ino());
        putU64(out, offset + 8, a.size());
        putU64(out, offset + 16, a.blocks());
        putU64(out, offset + 24, a.atime());
        putU64(out, offset + 32, a.mtime());
        putU64(out, offset + 40, a.ctime());
        putI32(out, offset + 48, a.atimeNsec());
        putI32(out, offset + 52, a.mtimeNsec());
        putI32(out, offset + 56, a.ctimeNsec());
        putI32(out, offset + 60, a.mode());
        putI32(out, offset + 64, a.nlink());
        putI32(out, offset + 68, a.uid());
        putI32(out, offset + 72, a.gid());
        putI32(out, offset + 76, a.rdev());
        putI32(out, offset + 80, a.blksize());
        putI32(out, offset + 84, 0);
        return Wire.ATTR;
    }

    /** fuse_entry_out (128 bytes). A negative entry is sent with zeroed attributes. */
    public static int entry(byte[] out, int offset, Entry e) {
        putU64(out, offset, e.nodeId());
        putU64(out, offset + 8, e.generation());
        putU64(out, offset + 16, seconds(e.entryValidNanos()));
        putU64(out, offset + 24, seconds(e.attrValidNanos()));
        putI32(out, offset + 32, nanos(e.entryValidNanos()));
        putI32(out, offset + 36, nanos(e.attrValidNanos()));
        if (e.isNegative()) {
            Wire.zero(out, offset + 40, Wire.ATTR);
        } else {
            attr(out, offset + 40, e.attr());
        }
        return Wire.ENTRY_OUT;
    }

    /** fuse_attr_out (104 bytes). */
    public static int attrOut(byte[] out, int offset, AttrReply r) {
        putU64(out, offset, seconds(r.validNanos()));
        putI32(out, offset + 8, nanos(r.validNanos()));
        putI32(out, offset + 12, 0);
        attr(out, offset + 16, r.attr());
        return Wire.ATTR_OUT;
    }

    /** fuse_open_out (16 bytes): fh, open_flags, backing_id (0 unless passthrough). */
    public static int openOut(byte[] out, int offset, OpenReply r) {
        putU64(out, offset, r.fileHandle());
        putI32(out, offset + 8, r.openFlags());
        putI32(out, offset + 12, r.backingId());
        return Wire.OPEN_OUT;
    }

    /** fuse_statfs_out (80 bytes): fuse_kstatfs with zeroed padding and spare words. */
    public static int statfsOut(byte[] out, int offset, StatFs s) {
        putU64(out, offset, s.blocks());
        putU64(out, offset + 8, s.bfree());
        putU64(out, offset + 16, s.bavail());
        putU64(out, offset + 24, s.files());
        putU64(out, offset + 32, s.ffree());
        putI32(out, offset + 40, s.bsize());
        putI32(out, offset + 44, s.namelen());
        putI32(out, offset + 48, s.frsize());
        Wire.zero(out, offset + 52, Wire.STATFS_OUT - 52);
        return Wire.STATFS_OUT;
    }

    /** fuse_getxattr_out (8 bytes): the size a GETXATTR/LISTXATTR probe (size 0) asks for. */
    public static int getxattrOut(byte[] out, int offset, int size) {
        putI32(out, offset, size);
        putI32(out, offset + 4, 0);
        return Wire.GETXATTR_OUT;
    }

    /** fuse_lseek_out (8 bytes). */
    public static int lseekOut(byte[] out, int offset, long position) {
        putU64(out, offset, position);
        return Wire.LSEEK_OUT;
    }

    /** Whole seconds of a validity in nanoseconds (negative means none). */
    public static long seconds(long validNanos) {
        return validNanos <= 0 ? 0 : validNanos / NANOS_PER_SECOND;
    }

    /** The nanosecond remainder of a validity. */
    public static int nanos(long validNanos) {
        return validNanos <= 0 ? 0 : (int) (validNanos % NANOS_PER_SECOND);
    }
}
