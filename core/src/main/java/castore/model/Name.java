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
    /**
     * Computed on first use, as String does (0 = not yet): a decoded Directory makes a Name per
     * entry, and most are only compared, never hashed.
     */
    private int hash;

    private Name(byte[] bytes) {
        this.bytes = bytes;
    }

    public static Name of(byte[] bytes) {
        byte[] copy = bytes.clone();
        validate(copy);
        return new Name(copy);
    }

    /** A name from {@code bytes[from, to)} (copied). */
    static Name of(byte[] bytes, int from, int to) {
        byte[] copy = Arrays.copyOfRange(bytes, from, to);
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

    /** A copy of {@code bytes} as a Name, or null if they are not a valid one (checked once). */
    public static Name ofOrNull(byte[] bytes) {
        if (problem(bytes) != null) {
            return null;
        }
        return new Name(bytes.clone());
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

    /** This name for messages: see {@link #display(byte[])}. */
    public String display() {
        return display(bytes);
    }

    /**
     * A one-line printable rendering of bytes for messages: valid UTF-8 as text, control
     * characters and invalid bytes as escapes ({@code \n}, {@code \xff}), shortened past 80
     * characters, so an error naming a hostile name or digest stays one readable line.
     */
    static String display(byte[] bytes) {
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (i < bytes.length && out.length() <= 80) {
            int b = bytes[i] & 0xff;
            int len = utf8Length(bytes, i);
            if (len > 1) {
                String c = new String(bytes, i, len, StandardCharsets.UTF_8);
                if (Character.isISOControl(c.codePointAt(0))) {
                    escape(out, bytes, i, len);
                } else {
                    out.append(c);
                }
                i += len;
                continue;
            }
            switch (b) {
                case '\n' -> out.append("\\n");
                case '\t' -> out.append("\\t");
                case '\r' -> out.append("\\r");
                default -> {
                    if (b < 0x20 || b >= 0x7f) {
                        escape(out, bytes, i, 1);
                    } else {
                        out.append((char) b);
                    }
                }
            }
            i++;
        }
        return i < bytes.length || out.length() > 80 ? out.substring(0, Math.min(out.length(), 77)) + "..." : out.toString();
    }

    private static void escape(StringBuilder out, byte[] bytes, int from, int len) {
        for (int k = from; k < from + len; k++) {
            out.append(String.format("\\x%02x", bytes[k] & 0xff));
        }
    }

    /** Length of the well-formed multi-byte UTF-8 sequence at {@code i}, or 1. */
    private static int utf8Length(byte[] b, int i) {
        int lead = b[i] & 0xff;
        int len;
        int min2 = 0x80;
        int max2 = 0xbf;
        if (lead >= 0xc2 && lead <= 0xdf) {
            len = 2;
        } else if (lead >= 0xe0 && lead <= 0xef) {
            len = 3;
            min2 = lead == 0xe0 ? 0xa0 : 0x80; // no overlong forms
            max2 = lead == 0xed ? 0x9f : 0xbf; // no surrogates
        } else if (lead >= 0xf0 && lead <= 0xf4) {
            len = 4;
            min2 = lead == 0xf0 ? 0x90 : 0x80;
            max2 = lead == 0xf4 ? 0x8f : 0xbf;
        } else {
            return 1;
        }
        if (i + len > b.length) {
            return 1;
        }
        int second = b[i + 1] & 0xff;
        if (second < min2 || second > max2) {
            return 1;
        }
        for (int k = 2; k < len; k++) {
            int c = b[i + k] & 0xff;
            if (c < 0x80 || c > 0xbf) {
                return 1;
            }
        }
        return len;
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
        int h = hash;
        if (h == 0) {
            // A racing thread computes the same value; a name whose hash is 0 is hashed each time.
            h = Arrays.hashCode(bytes);
            hash = h;
        }
        return h;
    }

    @Override
    public int compareTo(Name o) {
        // Unsigned bytes, then length: Arrays.compareUnsigned's order, in a loop C1 compiles
        // well (names differ within their first bytes; a mount's decoding of each Directory
        // compares every name with the one before it).
        byte[] a = bytes;
        byte[] b = o.bytes;
        int n = Math.min(a.length, b.length);
        for (int i = 0; i < n; i++) {
            if (a[i] != b[i]) {
                return (a[i] & 0xff) - (b[i] & 0xff);
            }
        }
        return a.length - b.length;
    }
}
