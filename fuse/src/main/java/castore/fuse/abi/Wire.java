package castore.fuse.abi;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Sizes and offsets of the FUSE wire structs (fuse.h, 64-bit padded, host byte order) and
 * unaligned accessors over the heap arrays requests are decoded from and replies encoded into.
 */
public final class Wire {
    public static final int IN_HEADER = 40;
    public static final int OUT_HEADER = 16;
    /** fuse_notify_store_out: nodeid, offset, size, padding. */
    public static final int NOTIFY_STORE_OUT = 24;
    /** The notification code (in the out header's error field, with unique 0) of FUSE_NOTIFY_STORE. */
    public static final int NOTIFY_STORE = 4;
    public static final int ATTR = 88;
    public static final int ENTRY_OUT = 128;
    public static final int ATTR_OUT = 104;
    public static final int OPEN_OUT = 16;
    public static final int INIT_IN = 64;
    /** fuse_init_in before 7.36: major, minor, max_readahead, flags. */
    public static final int INIT_IN_COMPAT = 16;
    public static final int INIT_OUT = 64;
    public static final int STATFS_OUT = 80;
    public static final int DIRENT = 24;
    public static final int DIRENTPLUS = ENTRY_OUT + DIRENT;
    public static final int FORGET_IN = 8;
    public static final int BATCH_FORGET_IN = 8;
    public static final int FORGET_ONE = 16;
    public static final int GETATTR_IN = 16;
    public static final int OPEN_IN = 8;
    public static final int READ_IN = 40;
    public static final int RELEASE_IN = 24;
    public static final int GETXATTR_IN = 8;
    public static final int GETXATTR_OUT = 8;
    public static final int ACCESS_IN = 8;
    public static final int INTERRUPT_IN = 8;
    public static final int LSEEK_IN = 24;
    public static final int LSEEK_OUT = 8;
    /** The smallest read buffer the kernel accepts. */
    public static final int MIN_READ_BUFFER = 8192;
    /** fuse_in_header + fuse_write_in: the kernel wants room for these plus max_write. */
    public static final int WRITE_OVERHEAD = IN_HEADER + 40;

    // fuse_in_header
    public static final int IN_LEN = 0;
    public static final int IN_OPCODE = 4;
    public static final int IN_UNIQUE = 8;
    public static final int IN_NODEID = 16;
    public static final int IN_UID = 24;
    public static final int IN_GID = 28;
    public static final int IN_PID = 32;
    public static final int IN_TOTAL_EXTLEN = 36;

    /** Bit 0 of a unique marks an INTERRUPT's own id (FUSE_INT_REQ_BIT). */
    public static final long INT_REQ_BIT = 1;

    // Codecs work on heap arrays through byte-array views: under C1 (the CLI runs with
    // -XX:TieredStopAtLevel=1) and in the interpreter, a VarHandle access to a byte[] costs a
    // fraction of a MemorySegment access (no segment, bounds and liveness checks to run through),
    // and FUSE requests are hot from a cold mount's first `find` on (docs/fuse.md, "Codecs").
    private static final VarHandle U16 = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.nativeOrder());
    private static final VarHandle U32 = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.nativeOrder());
    private static final VarHandle U64 = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.nativeOrder());

    private Wire() {
    }

    public static int u16(byte[] b, int offset) {
        return Short.toUnsignedInt((short) U16.get(b, offset));
    }

    public static int i32(byte[] b, int offset) {
        return (int) U32.get(b, offset);
    }

    public static long u32(byte[] b, int offset) {
        return Integer.toUnsignedLong((int) U32.get(b, offset));
    }

    public static long u64(byte[] b, int offset) {
        return (long) U64.get(b, offset);
    }

    public static void putU16(byte[] b, int offset, int value) {
        U16.set(b, offset, (short) value);
    }

    public static void putI32(byte[] b, int offset, int value) {
        U32.set(b, offset, value);
    }

    public static void putU64(byte[] b, int offset, long value) {
        U64.set(b, offset, value);
    }

    /** Zeros {@code length} bytes from {@code offset} (padding and reserved fields). */
    public static void zero(byte[] b, int offset, int length) {
        Arrays.fill(b, offset, offset + length, (byte) 0);
    }

    /** Rounds up to the 8-byte boundary that dirents are padded to. */
    public static int align8(int n) {
        return (n + 7) & ~7;
    }
}
