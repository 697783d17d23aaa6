package castore.model;

import castore.hash.Blake3;
import com.google.protobuf.UnknownFieldSet;
import java.util.Arrays;
import java.util.Collections;
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
    private static final Directory EMPTY = new Directory(new Name[0], new Node[0], 0);

    /** Entries in name order (unsigned bytes), all kinds together; never modified. */
    private final Name[] names;
    private final Node[] nodes;
    private final long size;
    private volatile NavigableMap<Name, Node> entries;
    private volatile byte[] encoded;
    private volatile B3Digest digest;

    private Directory(Name[] names, Node[] nodes, long size) {
        this.names = names;
        this.nodes = nodes;
        this.size = size;
    }

    public static Directory empty() {
        return EMPTY;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Entries in name order (unsigned bytes), all kinds together, as a map (built on first use). */
    public NavigableMap<Name, Node> entries() {
        NavigableMap<Name, Node> map = entries;
        if (map == null) {
            TreeMap<Name, Node> tree = new TreeMap<>();
            for (int i = 0; i < names.length; i++) {
                tree.put(names[i], nodes[i]);
            }
            map = Collections.unmodifiableNavigableMap(tree);
            entries = map;
        }
        return map;
    }

    /** The node named {@code name}, or null. */
    public Node get(Name name) {
        int i = indexOf(name);
        return i >= 0 ? nodes[i] : null;
    }

    /** The index of the entry named {@code name} in name order, or a negative number if there is none. */
    public int indexOf(Name name) {
        // Arrays.binarySearch's contract, written out: through Comparable it costs an interface
        // call per probe in C1-compiled code (every LOOKUP of a mount searches its directory).
        int low = 0;
        int high = names.length - 1;
        while (low <= high) {
            int mid = (low + high) >>> 1;
            int c = names[mid].compareTo(name);
            if (c < 0) {
                low = mid + 1;
            } else if (c > 0) {
                high = mid - 1;
            } else {
                return mid;
            }
        }
        return -(low + 1);
    }

    public int entryCount() {
        return names.length;
    }

    /** The name of entry {@code index} in name order. */
    public Name name(int index) {
        return names[index];
    }

    /** The node of entry {@code index} in name order. */
    public Node node(int index) {
        return nodes[index];
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
        for (int i = 0; i < names.length; i++) {
            switch (nodes[i]) {
                case DirectoryNode d -> b.addDirectories(d.toProto(names[i]));
                case FileNode f -> b.addFiles(f.toProto(names[i]));
                case SymlinkNode s -> b.addSymlinks(s.toProto(names[i]));
            }
        }
        return b.build();
    }

    /** The canonical protobuf encoding (cached; callers must not modify it). */
    public byte[] encode() {
        byte[] e = encoded;
        if (e == null) {
            e = DirectoryWire.encode(names, nodes);
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
        return DirectoryWire.decode(bytes);
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
        return o instanceof Directory other && Arrays.equals(names, other.names) && Arrays.equals(nodes, other.nodes);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(names) + Arrays.hashCode(nodes);
    }

    @Override
    public String toString() {
        return "Directory" + digest() + entries();
    }

    /** Collects entries in any order; {@link #build()} sorts and validates. */
    public static final class Builder {
        private final TreeMap<Name, Node> entries = new TreeMap<>();

        public Builder add(Name name, Node node) {
            if (entries.putIfAbsent(name, node) != null) {
                throw duplicate(name);
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
            Name[] names = entries.keySet().toArray(new Name[0]);
            Node[] nodes = entries.values().toArray(new Node[0]);
            return new Directory(names, nodes, sizeOf(names, nodes));
        }
    }

    /**
     * A Directory from one list per kind (directories, files, symlinks), each in strictly
     * ascending name order (the decoder has checked that), and {@code size} its {@link #size()}
     * (the decoder summed it): merged into one name order, rejecting a name used by two kinds.
     */
    static Directory fromSortedLists(Name[][] names, Node[][] nodes, long size) {
        int n = names[0].length + names[1].length + names[2].length;
        if (n == 0) {
            return EMPTY;
        }
        for (int k = 0; k < 3; k++) {
            if (names[k].length == n) {
                // One kind only (a directory of files, say): already in order.
                return new Directory(names[k], nodes[k], size);
            }
        }
        Name[] sortedNames = new Name[n];
        Node[] sortedNodes = new Node[n];
        int[] next = new int[3];
        for (int out = 0; out < n; out++) {
            int best = -1;
            for (int k = 0; k < 3; k++) {
                if (next[k] == names[k].length) {
                    continue;
                }
                int c = best < 0 ? -1 : names[k][next[k]].compareTo(names[best][next[best]]);
                if (c == 0) {
                    throw duplicate(names[k][next[k]]);
                }
                if (c < 0) {
                    best = k;
                }
            }
            sortedNames[out] = names[best][next[best]];
            sortedNodes[out] = nodes[best][next[best]++];
        }
        return new Directory(sortedNames, sortedNodes, size);
    }

    private static InvalidDataException duplicate(Name name) {
        return new InvalidDataException("duplicate name '" + name.display() + "' in Directory");
    }

    private static long sizeOf(Name[] names, Node[] nodes) {
        long size = nodes.length;
        for (int i = 0; i < nodes.length; i++) {
            if (nodes[i] instanceof DirectoryNode d) {
                try {
                    size = Math.addExact(size, d.size());
                } catch (ArithmeticException overflow) {
                    throw new InvalidDataException("Directory size overflows at '" + names[i].display() + "'");
                }
            }
        }
        return size;
    }
}
