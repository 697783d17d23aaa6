package castore.ingest.posix;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Lists a directory descriptor with getdents64(2): names as raw bytes with their d_type, without
 * "." and "..". One reader per thread; its buffer is reused across directories.
 */
public final class DirectoryReader implements AutoCloseable {
    private static final int BUFFER_SIZE = 64 * 1024;
    // struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name[].
    private static final int INO_OFFSET = 0;
    private static final int RECLEN_OFFSET = 16;
    private static final int TYPE_OFFSET = 18;
    private static final int NAME_OFFSET = 19;

    private final Arena arena = Arena.ofConfined();
    private final MemorySegment buffer = arena.allocate(BUFFER_SIZE, 8);

    /** One directory entry: its name, d_type (DT_UNKNOWN when the filesystem does not say) and d_ino. */
    public record Entry(byte[] name, int type, long inode) {
    }

    /** All entries of the directory open at {@code fd} (which must be at its start). */
    public List<Entry> list(int fd, byte[] path) throws PosixException {
        List<Entry> entries = new ArrayList<>();
        while (true) {
            long filled = Posix.getdents(fd, buffer, path);
            if (filled == 0) {
                return entries;
            }
            long pos = 0;
            while (pos < filled) {
                int reclen = Short.toUnsignedInt(buffer.get(JAVA_SHORT_UNALIGNED, pos + RECLEN_OFFSET));
                int type = Byte.toUnsignedInt(buffer.get(JAVA_BYTE, pos + TYPE_OFFSET));
                long nameStart = pos + NAME_OFFSET;
                long nameEnd = nameStart;
                long recordEnd = pos + reclen;
                while (nameEnd < recordEnd && buffer.get(JAVA_BYTE, nameEnd) != 0) {
                    nameEnd++;
                }
                byte[] name = buffer.asSlice(nameStart, nameEnd - nameStart).toArray(JAVA_BYTE);
                if (!isDotOrDotDot(name)) {
                    entries.add(new Entry(name, type, buffer.get(JAVA_LONG_UNALIGNED, pos + INO_OFFSET)));
                }
                pos = recordEnd;
            }
        }
    }

    private static boolean isDotOrDotDot(byte[] name) {
        return name.length == 1 && name[0] == '.' || name.length == 2 && name[0] == '.' && name[1] == '.';
    }

    @Override
    public void close() {
        arena.close();
    }
}
