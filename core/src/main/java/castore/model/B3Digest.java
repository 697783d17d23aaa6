package castore.model;

import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;

/**
 * A BLAKE3 digest: exactly 32 bytes. Text form is {@code b3:} + standard base64 with padding,
 * as tvix prints it; {@link #parse} also accepts 64 hex digits for convenience.
 */
public final class B3Digest implements Comparable<B3Digest> {
    public static final int LENGTH = 32;
    private static final String PREFIX = "b3:";

    private final byte[] bytes;
    private final int hash;

    private B3Digest(byte[] bytes) {
        this.bytes = bytes;
        // Digests are uniformly distributed: the first four bytes make a good hash.
        this.hash = (bytes[0] & 0xff) << 24 | (bytes[1] & 0xff) << 16 | (bytes[2] & 0xff) << 8 | (bytes[3] & 0xff);
    }

    /** Copies {@code bytes}; it must hold exactly 32 bytes. */
    public static B3Digest of(byte[] bytes) {
        if (bytes == null || bytes.length != LENGTH) {
            throw new InvalidDataException("invalid digest length " + (bytes == null ? 0 : bytes.length) + ", expected " + LENGTH);
        }
        return new B3Digest(bytes.clone());
    }

    /** Takes ownership of {@code bytes} (no copy): for hashers that just produced them. */
    public static B3Digest wrap(byte[] bytes) {
        if (bytes.length != LENGTH) {
            throw new InvalidDataException("invalid digest length " + bytes.length + ", expected " + LENGTH);
        }
        return new B3Digest(bytes);
    }

    public static B3Digest of(com.google.protobuf.ByteString bytes) {
        if (bytes.size() != LENGTH) {
            throw new InvalidDataException("invalid digest length " + bytes.size() + ", expected " + LENGTH);
        }
        return new B3Digest(bytes.toByteArray());
    }

    /** Parses {@code b3:<base64>} or 64 hex digits. */
    public static B3Digest parse(String text) {
        if (text == null) {
            throw new InvalidDataException("missing digest");
        }
        byte[] decoded;
        try {
            if (text.startsWith(PREFIX)) {
                decoded = Base64.getDecoder().decode(text.substring(PREFIX.length()));
            } else if (text.length() == 2 * LENGTH) {
                decoded = HexFormat.of().parseHex(text);
            } else {
                throw new InvalidDataException("invalid digest '" + display(text) + "': expected b3:<base64> or 64 hex digits");
            }
        } catch (IllegalArgumentException e) {
            throw new InvalidDataException("invalid digest '" + display(text) + "': " + e.getMessage());
        }
        if (decoded.length != LENGTH) {
            throw new InvalidDataException("invalid digest '" + display(text) + "': " + decoded.length + " bytes, expected " + LENGTH);
        }
        return new B3Digest(decoded);
    }

    /** User input echoed in a message: one line, not too long. */
    private static String display(String text) {
        return Name.display(text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    public byte[] toByteArray() {
        return bytes.clone();
    }

    public com.google.protobuf.ByteString toByteString() {
        return com.google.protobuf.ByteString.copyFrom(bytes);
    }

    /** Copies the digest into {@code dst} at {@code offset}. */
    public void copyTo(byte[] dst, int offset) {
        System.arraycopy(bytes, 0, dst, offset, LENGTH);
    }

    public byte byteAt(int index) {
        return bytes[index];
    }

    public String toHex() {
        return HexFormat.of().formatHex(bytes);
    }

    @Override
    public String toString() {
        return PREFIX + Base64.getEncoder().encodeToString(bytes);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof B3Digest other && Arrays.equals(bytes, other.bytes);
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public int compareTo(B3Digest o) {
        return Arrays.compareUnsigned(bytes, o.bytes);
    }
}
