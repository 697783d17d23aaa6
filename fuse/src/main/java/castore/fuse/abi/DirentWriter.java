package castore.fuse.abi;

import castore.fuse.api.DirectorySink;
import castore.fuse.api.Entry;

import static castore.fuse.abi.Wire.putI32;
import static castore.fuse.abi.Wire.putU64;

/**
 * Packs fuse_dirent (READDIR) or fuse_direntplus (READDIRPLUS) records into a reply body: each
 * record is the struct, the name without NUL, then zeros up to the next 8-byte boundary. A record
 * that does not fit whole is refused, so the reply never holds a partial one. Reusable via
 * {@link #reset}.
 */
public final class DirentWriter implements DirectorySink {
    /** The kernel's FUSE_NAME_MAX. */
    public static final int NAME_MAX = 1024;

    private byte[] out;
    private int position;
    private int limit;
    private int start;
    private boolean plus;

    /** Starts a new body at {@code offset} of {@code out} holding at most {@code maxBytes}. */
    public DirentWriter reset(byte[] out, int offset, int maxBytes, boolean plus) {
        this.out = out;
        this.start = offset;
        this.position = offset;
        this.limit = (int) Math.min(out.length, (long) offset + maxBytes);
        this.plus = plus;
        return this;
    }

    /** Bytes written since {@link #reset}. */
    public int length() {
        return position - start;
    }

    /** The record size of a fuse_dirent with a name of {@code nameLength} bytes. */
    public static int direntSize(int nameLength) {
        return Wire.align8(Wire.DIRENT + nameLength);
    }

    /** The record size of a fuse_direntplus with a name of {@code nameLength} bytes. */
    public static int direntplusSize(int nameLength) {
        return Wire.align8(Wire.DIRENTPLUS + nameLength);
    }

    /**
     * Adds a plain entry. In a READDIRPLUS body it goes out with a zeroed fuse_entry_out, which the
     * kernel lists without taking a lookup reference (right for "." and "..").
     */
    @Override
    public boolean add(long ino, byte[] name, int direntType, long nextOffset) {
        checkName(name);
        if (plus) {
            int size = direntplusSize(name.length);
            if (position + size > limit) {
                return false;
            }
            Wire.zero(out, position, Wire.ENTRY_OUT);
            dirent(position + Wire.ENTRY_OUT, ino, name, direntType, nextOffset, size - Wire.ENTRY_OUT);
            position += size;
            return true;
        }
        int size = direntSize(name.length);
        if (position + size > limit) {
            return false;
        }
        dirent(position, ino, name, direntType, nextOffset, size);
        position += size;
        return true;
    }

    @Override
    public boolean addPlus(Entry entry, byte[] name, long nextOffset) {
        if (!plus) {
            throw new IllegalStateException("addPlus in a READDIR reply: use add");
        }
        checkName(name);
        int size = direntplusSize(name.length);
        if (position + size > limit) {
            return false;
        }
        Replies.entry(out, position, entry);
        long ino = entry.isNegative() ? 0 : entry.attr().ino();
        int type = entry.isNegative() ? 0 : entry.attr().direntType();
        dirent(position + Wire.ENTRY_OUT, ino, name, type, nextOffset, size - Wire.ENTRY_OUT);
        position += size;
        return true;
    }

    private void dirent(int at, long ino, byte[] name, int type, long nextOffset, int recordSize) {
        putU64(out, at, ino);
        putU64(out, at + 8, nextOffset);
        putI32(out, at + 16, name.length);
        putI32(out, at + 20, type);
        System.arraycopy(name, 0, out, at + Wire.DIRENT, name.length);
        int pad = recordSize - Wire.DIRENT - name.length;
        if (pad > 0) {
            Wire.zero(out, at + Wire.DIRENT + name.length, pad);
        }
    }

    // The kernel fails the whole listing with EIO on an empty name, one with '/', or a long one.
    private static void checkName(byte[] name) {
        if (name.length == 0 || name.length > NAME_MAX) {
            throw new IllegalArgumentException("directory entry name length " + name.length + " not in 1.." + NAME_MAX);
        }
        for (byte b : name) {
            if (b == '/' || b == 0) {
                throw new IllegalArgumentException("directory entry name contains '/' or NUL");
            }
        }
    }
}
