package castore.fuse.abi;

import static castore.fuse.abi.Wire.i32;
import static castore.fuse.abi.Wire.putI32;
import static castore.fuse.abi.Wire.putU16;

/** INIT: decoding the kernel's offer, choosing our answer, encoding fuse_init_out. */
public final class Init {
    public static final int MAJOR = 7;
    /** The protocol version whose structs this code follows (Linux 6.18). */
    public static final int MINOR = 45;
    /** The oldest kernel protocol served: fuse_init_out is 64 bytes from 7.23 on. */
    public static final int MIN_MINOR = 23;

    private Init() {
    }

    /** fuse_init_in: what the kernel offers. {@code flags} merges flags2 when INIT_EXT is set. */
    public record Offer(int major, int minor, int maxReadahead, long flags) {
        public static Offer decode(byte[] in, int offset, int bodyLength) {
            if (bodyLength < 8) {
                throw new IllegalArgumentException("INIT body of " + bodyLength + " bytes");
            }
            int major = i32(in, offset);
            int minor = i32(in, offset + 4);
            if (bodyLength < Wire.INIT_IN_COMPAT) {
                return new Offer(major, minor, 0, 0);
            }
            int maxReadahead = i32(in, offset + 8);
            long flags = Integer.toUnsignedLong(i32(in, offset + 12));
            if ((flags & InitFlags.INIT_EXT) != 0 && bodyLength >= 20) {
                flags |= Integer.toUnsignedLong(i32(in, offset + 16)) << 32;
            }
            return new Offer(major, minor, maxReadahead, flags);
        }
    }

    /**
     * fuse_init_out: what we answer. {@code flags} bits 32..63 go out in flags2;
     * {@code maxStackDepth} is 1 with PASSTHROUGH (backing files on a plain filesystem; a stack
     * depth of 2 would forbid an overlayfs over the mount), 0 otherwise.
     */
    public record Answer(int major, int minor, int maxReadahead, long flags, int maxBackground,
                         int congestionThreshold, int maxWrite, int timeGran, int maxPages, int maxStackDepth) {

        public int encode(byte[] out, int offset) {
            Wire.zero(out, offset, Wire.INIT_OUT);
            putI32(out, offset, major);
            putI32(out, offset + 4, minor);
            putI32(out, offset + 8, maxReadahead);
            putI32(out, offset + 12, (int) flags);
            putU16(out, offset + 16, maxBackground);
            putU16(out, offset + 18, congestionThreshold);
            putI32(out, offset + 20, maxWrite);
            putI32(out, offset + 24, timeGran);
            putU16(out, offset + 28, maxPages);
            putU16(out, offset + 30, 0); // map_alignment: DAX only
            putI32(out, offset + 32, (int) (flags >>> 32));
            putI32(out, offset + 36, maxStackDepth);
            return Wire.INIT_OUT;
        }
    }

    /** Our limits for the answer. */
    public record Limits(long wantedFlags, int maxWrite, int pageSize, int maxBackground) {
    }

    /**
     * Chooses the answer: the lower minor, the kernel's max_readahead (it never takes more), the
     * wanted flags the kernel offers, 1 MiB-style max_pages, nanosecond timestamps, and a
     * backing stack depth of 1 if PASSTHROUGH is among them.
     *
     * @throws IllegalArgumentException if the kernel's protocol is too old to serve
     */
    public static Answer negotiate(Offer offer, Limits limits) {
        if (offer.major() != MAJOR || offer.minor() < MIN_MINOR) {
            throw new IllegalArgumentException("kernel FUSE protocol " + offer.major() + "." + offer.minor()
                    + " not supported (need " + MAJOR + "." + MIN_MINOR + " or later)");
        }
        long flags = limits.wantedFlags() & offer.flags();
        if ((offer.flags() & InitFlags.INIT_EXT) == 0) {
            flags &= 0xffff_ffffL;
        }
        int maxBackground = limits.maxBackground();
        int maxStackDepth = (flags & InitFlags.PASSTHROUGH) != 0 ? 1 : 0;
        return new Answer(MAJOR, Math.min(MINOR, offer.minor()), offer.maxReadahead(), flags, maxBackground,
                Math.max(1, maxBackground * 3 / 4), limits.maxWrite(), 1, limits.maxWrite() / limits.pageSize(),
                maxStackDepth);
    }
}
