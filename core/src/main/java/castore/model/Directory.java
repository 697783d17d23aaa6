package castore.model;

import castore.hash.Blake3;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.UnknownFieldSet;
import java.util.Collections;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;
import java.util.function.Supplier;

/**
 * The contents of one directory: named child nodes. Immutable and always valid: names are
 * unique across kinds and every constructor path validates. The digest is BLAKE3 of the
 * canonical protobuf encoding (lists sorted by name bytes, default values omitted), which is
 * what tvix computes, so equal trees have equal digests in both.
 */
public final class Directory {
    private static final Directory EMPTY = new Directory(new TreeMap<>(), 0);

    private final NavigableMap<Name, Node> entries;
    private final long size;
    private volatile byte[] encoded;
    private volatile B3Digest digest;

    private Directory(TreeMap<Name, Node> entries, long size) {
        this.entries = Collections.unmodifiableNavigableMap(entries);
        this.size = size;
    }

    public static Directory empty() {
        return EMPTY;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Entries in name order (unsigned bytes), all kinds together. */
    public NavigableMap<Name, Node> entries() {
        return entries;
    }

    public Node get(Name name) {
        return entries.get(name);
    }

    public int entryCount() {
        return entries.size();
    }

    /**
     * tvix's size: the number of entries plus the sizes of all child directories, i.e. the
     * number of nodes below this directory. Overflow is rejected at construction.
     */
    public long size() {
        return size;
    }

    /** The node that points at this directory. */
    public DirectoryNode toNode() {
        return new DirectoryNode(digest(), size);
    }

    public castore.proto.Directory toProto() {
        var b = castore.proto.Directory.newBuilder();
        for (var e : entries.entrySet()) {
            switch (e.getValue()) {
                case DirectoryNode d -> b.addDirectories(d.toProto(e.getKey()));
                case FileNode f -> b.addFiles(f.toProto(e.getKey()));
                case SymlinkNode s -> b.addSymlinks(s.toProto(e.getKey()));
            }
        }
        return b.build();
    }

    /** The canonical protobuf encoding (cached; callers must not modify it). */
    public byte[] encode() {
        byte[] e = encoded;
        if (e == null) {
            e = toProto().toByteArray();
            encoded = e;
        }
        return e;
    }

    public B3Digest digest() {
        B3Digest d = digest;
        if (d == null) {
            d = Blake3.digest(encode());
            digest = d;
        }
        return d;
    }

    /** Decodes and validates the protobuf encoding; unknown fields are rejected. */
    public static Directory decode(byte[] bytes) {
        castore.proto.Directory proto;
        try {
            proto = castore.proto.Directory.parseFrom(bytes);
        } catch (InvalidProtocolBufferException e) {
            throw new InvalidDataException("undecodable Directory: " + e.getMessage(), e);
        }
        return fromProto(proto);
    }

    /**
     * Validates a Directory received from outside: sorted unique names, valid digests, sizes and
     * targets, and no unknown fields (they would change the encoding and so the digest).
     */
    public static Directory fromProto(castore.proto.Directory proto) {
        rejectUnknown(proto.getUnknownFields(), "Directory");
        var b = new Builder();
        Name previous = null;
        for (var d : proto.getDirectoriesList()) {
            rejectUnknown(d.getUnknownFields(), "DirectoryNode");
            Name name = Name.of(d.getName());
            previous = checkOrder(previous, name, "directories");
            b.add(name, entry(name, () -> DirectoryNode.fromProto(d)));
        }
        previous = null;
        for (var f : proto.getFilesList()) {
            rejectUnknown(f.getUnknownFields(), "FileNode");
            Name name = Name.of(f.getName());
            previous = checkOrder(previous, name, "files");
            b.add(name, entry(name, () -> FileNode.fromProto(f)));
        }
        previous = null;
        for (var s : proto.getSymlinksList()) {
            rejectUnknown(s.getUnknownFields(), "SymlinkNode");
            Name name = Name.of(s.getName());
            previous = checkOrder(previous, name, "symlinks");
            b.add(name, entry(name, () -> SymlinkNode.fromProto(s)));
        }
        return b.build();
    }

    private static Name checkOrder(Name previous, Name name, String list) {
        if (previous != null && previous.compareTo(name) >= 0) {
            throw new InvalidDataException("Directory " + list + " not sorted or duplicate: '" + name.display()
                    + "' after '" + previous.display() + "'");
        }
        return name;
    }

    /** Decodes one entry's node, naming the entry if it is invalid. */
    private static Node entry(Name name, Supplier<Node> decode) {
        try {
            return decode.get();
        } catch (InvalidDataException e) {
            throw new InvalidDataException("Directory entry '" + name.display() + "': " + e.getMessage(), e);
        }
    }

    private static void rejectUnknown(UnknownFieldSet unknown, String what) {
        if (!unknown.asMap().isEmpty()) {
            throw new InvalidDataException(what + " has unknown fields " + unknown.asMap().keySet());
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Directory other && entries.equals(other.entries);
    }

    @Override
    public int hashCode() {
        return entries.hashCode();
    }

    @Override
    public String toString() {
        return "Directory" + digest() + entries;
    }

    /** Collects entries in any order; {@link #build()} sorts and validates. */
    public static final class Builder {
        private final TreeMap<Name, Node> entries = new TreeMap<>();

        public Builder add(Name name, Node node) {
            if (entries.putIfAbsent(name, node) != null) {
                throw new InvalidDataException("duplicate name '" + name.display() + "' in Directory");
            }
            return this;
        }

        public Builder add(String name, Node node) {
            return add(Name.of(name), node);
        }

        public int count() {
            return entries.size();
        }

        public Directory build() {
            if (entries.isEmpty()) {
                return EMPTY;
            }
            long size = entries.size();
            for (Map.Entry<Name, Node> e : entries.entrySet()) {
                if (e.getValue() instanceof DirectoryNode d) {
                    try {
                        size = Math.addExact(size, d.size());
                    } catch (ArithmeticException overflow) {
                        throw new InvalidDataException("Directory size overflows at '" + e.getKey().display() + "'");
                    }
                }
            }
            return new Directory(new TreeMap<>(entries), size);
        }
    }
}
