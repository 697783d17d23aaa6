package castore.model;

import com.google.protobuf.ByteString;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * A directory entry or root name: 1 to 255 bytes, no '/', no NUL, not "." or "..".
 * Names are bytes, not strings: Unix file names need not be UTF-8. Ordered by unsigned bytes,
 * the order of the Directory lists.
 */
public final class Name implements Comparable<Name> {
    public static final int MAX_LENGTH = 255;

    private final byte[] bytes;
    private final int hash;

    private Name(byte[] bytes) {
        this.bytes = bytes;
        this.hash = Arrays.hashCode(bytes);
    }

    public static Name of(byte[] bytes) {
        byte[] copy = bytes.clone();
        validate(copy);
        return new Name(copy);
    }

    public static Name of(ByteString bytes) {
        byte[] copy = bytes.toByteArray();
        validate(copy);
        return new Name(copy);
    }

    /** A name from a Java string, encoded as UTF-8. */
    public static Name of(String name) {
        byte[] copy = name.getBytes(StandardCharsets.UTF_8);
        validate(copy);
        return new Name(copy);
    }

    /** Whether {@code bytes} is a valid name, without throwing. */
    public static boolean isValid(byte[] bytes) {
        return problem(bytes) == null;
    }

    private static void validate(byte[] bytes) {
        String problem = problem(bytes);
        if (problem != null) {
            throw new InvalidDataException("invalid name '" + display(bytes) + "': " + problem);
        }
    }

    private static String problem(byte[] bytes) {
        if (bytes.length == 0) {
            return "empty";
        }
        if (bytes.length > MAX_LENGTH) {
            return "longer than " + MAX_LENGTH + " bytes";
        }
        if (bytes.length == 1 && bytes[0] == '.' || bytes.length == 2 && bytes[0] == '.' && bytes[1] == '.') {
            return "'.' and '..' are reserved";
        }
        for (byte b : bytes) {
            if (b == '/') {
                return "contains '/'";
            }
            if (b == 0) {
                return "contains a NUL byte";
            }
        }
        return null;
    }

    /** A printable rendering for messages: UTF-8 with invalid bytes replaced. */
    static String display(byte[] bytes) {
        String s = new String(bytes, StandardCharsets.UTF_8);
        return s.length() > 80 ? s.substring(0, 77) + "..." : s;
    }

    public byte[] toByteArray() {
        return bytes.clone();
    }

    public ByteString toByteString() {
        return ByteString.copyFrom(bytes);
    }

    public int length() {
        return bytes.length;
    }

    /** The raw bytes, shared: callers must not modify them. Used on hot paths (FUSE replies). */
    public byte[] bytesUnsafe() {
        return bytes;
    }

    @Override
    public String toString() {
        return new String(bytes, StandardCharsets.UTF_8);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Name other && Arrays.equals(bytes, other.bytes);
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public int compareTo(Name o) {
        return Arrays.compareUnsigned(bytes, o.bytes);
    }
}
