package castore.fs;

import castore.fuse.api.DirectorySink;
import castore.fuse.api.Entry;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** A reply buffer that takes at most {@code capacity} entries and records them. */
final class RecordingSink implements DirectorySink {
    record Dirent(String name, long ino, int type, long nextOffset, Entry entry) {
    }

    private final int capacity;
    final List<Dirent> entries = new ArrayList<>();

    RecordingSink(int capacity) {
        this.capacity = capacity;
    }

    @Override
    public boolean add(long ino, byte[] name, int direntType, long nextOffset) {
        if (entries.size() >= capacity) {
            return false;
        }
        entries.add(new Dirent(new String(name, StandardCharsets.UTF_8), ino, direntType, nextOffset, null));
        return true;
    }

    @Override
    public boolean addPlus(Entry entry, byte[] name, long nextOffset) {
        if (entries.size() >= capacity) {
            return false;
        }
        entries.add(new Dirent(new String(name, StandardCharsets.UTF_8), entry.attr().ino(), entry.attr().direntType(),
                nextOffset, entry));
        return true;
    }

    List<String> names() {
        return entries.stream().map(Dirent::name).toList();
    }
}
