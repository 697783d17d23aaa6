package castore.model;

import com.google.protobuf.ByteString;
import java.util.Arrays;

/**
 * The canonical protobuf encoding of a Directory, written and read directly on byte arrays.
 *
 * <p>Why not protobuf-java's generated classes: a mount decodes one Directory per directory
 * entered, in a JVM that has just started. Parsing through the generated classes builds a proto
 * object per entry, then our model from it, through several hundred methods that start out
 * interpreted; this codec is a few small loops. The result is the same: the same bytes for the
 * same Directory (checked against protobuf-java in tests) and the same acceptance, i.e. any field
 * order, the last value of a repeated scalar, and every unknown field or wrong wire type rejected.
 *
 * <p>Wire form (tvix's castore.proto): {@code Directory} has {@code directories = 1},
 * {@code files = 2}, {@code symlinks = 3}; {@code DirectoryNode} has {@code name = 1},
 * {@code digest = 2}, {@code size = 3}; {@code FileNode} adds {@code executable = 4};
 * {@code SymlinkNode} has {@code name = 1}, {@code target = 2}. Defaults (0, false, empty) are
 * omitted.
 */
final class DirectoryWire {
    private static final int LEN = 2;
    private static final int VARINT = 0;
    private static final int DIRECTORIES = 1;
    private static final int FILES = 2;
    private static final int SYMLINKS = 3;

    private DirectoryWire() {
    }

    // ---- encoding ---------------------------------------------------------------------------

    /** Encodes entries given in name order: directories, then files, then symlinks, each in name order. */
    static byte[] encode(Name[] names, Node[] nodes) {
        int total = 0;
        for (int i = 0; i < nodes.length; i++) {
            int body = bodySize(names[i], nodes[i]);
            total += 1 + varintSize(body) + body;
        }
        byte[] out = new byte[total];
        int at = 0;
        for (int field = DIRECTORIES; field <= SYMLINKS; field++) {
            for (int i = 0; i < nodes.length; i++) {
                if (fieldOf(nodes[i]) == field) {
                    at = writeEntry(out, at, field, names[i], nodes[i]);
                }
            }
        }
        return out;
    }

    // Node kinds are told apart with instanceof, not pattern switches: each switch site is linked
    // through invokedynamic on first use, milliseconds apiece in the fresh JVM of a mount or import.

    private static int fieldOf(Node node) {
        return node instanceof DirectoryNode ? DIRECTORIES : node instanceof FileNode ? FILES : SYMLINKS;
    }

    private static int bodySize(Name name, Node node) {
        int size = bytesFieldSize(name.length());
        if (node instanceof DirectoryNode d) {
            return size + bytesFieldSize(B3Digest.LENGTH) + uint64FieldSize(d.size());
        }
        if (node instanceof FileNode f) {
            return size + bytesFieldSize(B3Digest.LENGTH) + uint64FieldSize(f.size()) + (f.executable() ? 2 : 0);
        }
        return size + bytesFieldSize(((SymlinkNode) node).target().size());
    }

    private static int writeEntry(byte[] out, int at, int field, Name name, Node node) {
        at = writeVarint(out, at, field << 3 | LEN);
        at = writeVarint(out, at, bodySize(name, node));
        at = writeBytes(out, at, 1, name.bytesUnsafe());
        if (node instanceof DirectoryNode d) {
            at = writeDigest(out, at, d.digest());
            at = writeUint64(out, at, 3, d.size());
        } else if (node instanceof FileNode f) {
            at = writeDigest(out, at, f.digest());
            at = writeUint64(out, at, 3, f.size());
            if (f.executable()) {
                out[at++] = 4 << 3 | VARINT;
                out[at++] = 1;
            }
        } else {
            ByteString target = ((SymlinkNode) node).target();
            at = writeVarint(out, at, 2 << 3 | LEN);
            at = writeVarint(out, at, target.size());
            target.copyTo(out, at);
            at += target.size();
        }
        return at;
    }

    private static int writeDigest(byte[] out, int at, B3Digest digest) {
        out[at++] = 2 << 3 | LEN;
        out[at++] = B3Digest.LENGTH;
        digest.copyTo(out, at);
        return at + B3Digest.LENGTH;
    }

    private static int writeBytes(byte[] out, int at, int field, byte[] value) {
        if (value.length == 0) {
            return at;
        }
        at = writeVarint(out, at, field << 3 | LEN);
        at = writeVarint(out, at, value.length);
        System.arraycopy(value, 0, out, at, value.length);
        return at + value.length;
    }

    private static int writeUint64(byte[] out, int at, int field, long value) {
        if (value == 0) {
            return at;
        }
        at = writeVarint(out, at, field << 3 | VARINT);
        return writeVarint(out, at, value);
    }

    private static int writeVarint(byte[] out, int at, long value) {
        while ((value & ~0x7fL) != 0) {
            out[at++] = (byte) (value & 0x7f | 0x80);
            value >>>= 7;
        }
        out[at++] = (byte) value;
        return at;
    }

    private static int bytesFieldSize(int length) {
        return length == 0 ? 0 : 1 + varintSize(length) + length;
    }

    private static int uint64FieldSize(long value) {
        return value == 0 ? 0 : 1 + varintSize(value);
    }

    private static int varintSize(long value) {
        int size = 1;
        while ((value & ~0x7fL) != 0) {
            value >>>= 7;
            size++;
        }
        return size;
    }

    // ---- decoding ---------------------------------------------------------------------------

    /** Decodes and validates; throws {@link InvalidDataException} naming what is wrong. */
    static Directory decode(byte[] bytes) {
        // Count first, so each kind's list is an exact array: one pass over tags and lengths only.
        int[] counts = new int[3];
        Reader in = new Reader(bytes, 0, bytes.length);
        while (in.more()) {
            int tag = in.tag();
            int field = tag >>> 3;
            if ((tag & 7) != LEN || field < DIRECTORIES || field > SYMLINKS) {
                throw unknown("Directory", tag);
            }
            in.skip(in.length());
            counts[field - 1]++;
        }
        // Lists indexed by kind (field - 1): directories, files, symlinks, each in wire order.
        Name[][] names = new Name[3][];
        Node[][] nodes = new Node[3][];
        for (int k = 0; k < 3; k++) {
            names[k] = new Name[counts[k]];
            nodes[k] = new Node[counts[k]];
        }
        int[] filled = new int[3];
        // Directory.size(): one per entry plus each subdirectory's size. Subdirectories are summed
        // here in wire order, which is their order in the merged list, so an overflow names the
        // entry Directory.sizeOf would.
        long size = counts[0] + counts[1] + counts[2];
        // One cursor for the whole message: each entry's body is read by narrowing its end
        // (a fresh mount decodes a Directory per directory a walk enters, in C1-compiled code).
        in = new Reader(bytes, 0, bytes.length);
        while (in.more()) {
            int field = in.tag() >>> 3;
            int bodyEnd = in.length() + in.at;
            int k = field - 1;
            int i = filled[k]++;
            in.end = bodyEnd;
            switch (field) {
                case DIRECTORIES -> {
                    DirectoryNode d = (DirectoryNode) node(in, "DirectoryNode", false, names[k], nodes[k], i);
                    try {
                        size = Math.addExact(size, d.size());
                    } catch (ArithmeticException overflow) {
                        throw new InvalidDataException("Directory size overflows at '" + names[k][i].display() + "'");
                    }
                }
                case FILES -> node(in, "FileNode", true, names[k], nodes[k], i);
                default -> symlink(in, names[k], nodes[k], i);
            }
            in.end = bytes.length;
            if (i > 0 && names[k][i - 1].compareTo(names[k][i]) >= 0) {
                String list = field == DIRECTORIES ? "directories" : field == FILES ? "files" : "symlinks";
                throw new InvalidDataException("Directory " + list + " not sorted or duplicate: '" + names[k][i].display()
                        + "' after '" + names[k][i - 1].display() + "'");
            }
        }
        return Directory.fromSortedLists(names, nodes, size);
    }

    /**
     * A DirectoryNode or FileNode body (up to {@code in.end}) into slot {@code i} of its kind's
     * lists; returns the node.
     */
    private static Node node(Reader in, String kind, boolean file, Name[] names, Node[] nodes, int i) {
        int nameFrom = 0;
        int nameTo = 0;
        int digestFrom = 0;
        int digestTo = 0;
        long size = 0;
        boolean executable = false;
        while (in.more()) {
            int tag = in.tag();
            switch (tag) {
                case 1 << 3 | LEN -> {
                    int length = in.length();
                    nameFrom = in.at;
                    nameTo = nameFrom + length;
                    in.skip(length);
                }
                case 2 << 3 | LEN -> {
                    int length = in.length();
                    digestFrom = in.at;
                    digestTo = digestFrom + length;
                    in.skip(length);
                }
                case 3 << 3 | VARINT -> size = in.varint();
                case 4 << 3 | VARINT -> {
                    if (!file) {
                        throw unknown(kind, tag);
                    }
                    executable = in.varint() != 0;
                }
                default -> throw unknown(kind, tag);
            }
        }
        Name name = Name.of(in.bytes, nameFrom, nameTo);
        names[i] = name;
        try {
            B3Digest digest = B3Digest.wrap(Arrays.copyOfRange(in.bytes, digestFrom, digestTo));
            Node node = file ? new FileNode(digest, size, executable) : new DirectoryNode(digest, size);
            nodes[i] = node;
            return node;
        } catch (InvalidDataException e) {
            throw new InvalidDataException("Directory entry '" + name.display() + "': " + e.getMessage(), e);
        }
    }

    /** A SymlinkNode body (up to {@code in.end}) into slot {@code i} of the symlink lists. */
    private static void symlink(Reader in, Name[] names, Node[] nodes, int i) {
        int nameFrom = 0;
        int nameTo = 0;
        int targetFrom = 0;
        int targetTo = 0;
        while (in.more()) {
            int tag = in.tag();
            int length = switch (tag) {
                case 1 << 3 | LEN, 2 << 3 | LEN -> in.length();
                default -> throw unknown("SymlinkNode", tag);
            };
            if (tag == (1 << 3 | LEN)) {
                nameFrom = in.at;
                nameTo = nameFrom + length;
            } else {
                targetFrom = in.at;
                targetTo = targetFrom + length;
            }
            in.skip(length);
        }
        Name name = Name.of(in.bytes, nameFrom, nameTo);
        names[i] = name;
        try {
            nodes[i] = new SymlinkNode(ByteString.copyFrom(in.bytes, targetFrom, targetTo - targetFrom));
        } catch (InvalidDataException e) {
            throw new InvalidDataException("Directory entry '" + name.display() + "': " + e.getMessage(), e);
        }
    }

    private static InvalidDataException unknown(String message, int tag) {
        return new InvalidDataException(message + " has unknown field " + (tag >>> 3) + " (wire type " + (tag & 7) + ")");
    }

    /** A cursor over {@code bytes[at, end)}; {@code end} narrows to one entry's body while it is read. */
    private static final class Reader {
        final byte[] bytes;
        int at;
        int end;

        Reader(byte[] bytes, int at, int end) {
            this.bytes = bytes;
            this.at = at;
            this.end = end;
        }

        boolean more() {
            return at < end;
        }

        int tag() {
            // The one-byte case written out here and in length(): C1 does not inline varint() into them.
            if (at < end && bytes[at] > 0) {
                return bytes[at++];
            }
            long tag = varint();
            if (tag <= 0 || tag > Integer.MAX_VALUE) {
                throw new InvalidDataException("undecodable Directory: invalid tag " + Long.toUnsignedString(tag));
            }
            return (int) tag;
        }

        /** A length prefix, checked against what is left. */
        int length() {
            if (at < end) {
                byte b = bytes[at];
                if (b >= 0 && b < end - at) {
                    at++;
                    return b;
                }
            }
            long length = varint();
            if (length < 0 || length > end - at) {
                throw new InvalidDataException("undecodable Directory: truncated field");
            }
            return (int) length;
        }

        void skip(int length) {
            at += length;
        }

        long varint() {
            // Tags, lengths and most sizes are one byte: that case without the loop.
            if (at < end) {
                byte b = bytes[at];
                if (b >= 0) {
                    at++;
                    return b;
                }
            }
            return varintLong();
        }

        private long varintLong() {
            long value = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (at >= end) {
                    throw new InvalidDataException("undecodable Directory: truncated varint");
                }
                byte b = bytes[at++];
                value |= (long) (b & 0x7f) << shift;
                if (b >= 0) {
                    return value;
                }
            }
            throw new InvalidDataException("undecodable Directory: malformed varint");
        }
    }
}
