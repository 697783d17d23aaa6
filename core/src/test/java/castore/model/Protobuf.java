package castore.model;

import java.io.ByteArrayOutputStream;

/** Protobuf wire encoding written out by hand (tags and varints), to check our encoder independently. */
final class Protobuf {
    private Protobuf() {
    }

    static byte[] varint(long value) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        while ((value & ~0x7fL) != 0) {
            out.write((int) (value & 0x7f) | 0x80);
            value >>>= 7;
        }
        out.write((int) value);
        return out.toByteArray();
    }

    /** A length-delimited field (wire type 2): bytes, strings and embedded messages. */
    static byte[] bytesField(int number, byte[] value) {
        return concat(varint(number << 3 | 2), varint(value.length), value);
    }

    /** A varint field (wire type 0): uint64 and bool. */
    static byte[] varintField(int number, long value) {
        return concat(varint(number << 3), varint(value));
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    // castore.proto: Directory {directories = 1, files = 2, symlinks = 3};
    // DirectoryNode {name = 1, digest = 2, size = 3}; FileNode {name = 1, digest = 2, size = 3,
    // executable = 4}; SymlinkNode {name = 1, target = 2}. Proto3 omits zero values.

    static byte[] directoryEntry(byte[] name, byte[] digest, long size) {
        byte[] node = concat(bytesField(1, name), bytesField(2, digest), size == 0 ? new byte[0] : varintField(3, size));
        return bytesField(1, node);
    }

    static byte[] fileEntry(byte[] name, byte[] digest, long size, boolean executable) {
        byte[] node = concat(bytesField(1, name), bytesField(2, digest),
                size == 0 ? new byte[0] : varintField(3, size), executable ? varintField(4, 1) : new byte[0]);
        return bytesField(2, node);
    }

    static byte[] symlinkEntry(byte[] name, byte[] target) {
        return bytesField(3, concat(bytesField(1, name), bytesField(2, target)));
    }
}
