package castore.s3;

import castore.model.B3Digest;
import castore.model.InvalidDataException;
import castore.model.Name;
import java.util.HexFormat;
import java.util.Optional;

/**
 * The key layout below the store prefix (docs/s3.md). Digests are lowercase hex, sharded by
 * their first byte so listings and filesystem-backed servers stay manageable; root names are
 * hex of their bytes, which keeps any byte legal in a key and sorts like the names themselves.
 */
final class Keys {
    static final String CHUNKS = "chunks/";
    static final String BLOBS = "blobs/";
    static final String DIRECTORIES = "directories/";
    static final String ROOTS = "roots/";
    static final String LEASES = "leases/";
    static final String GC_LOCK = "locks/gc";

    private static final HexFormat HEX = HexFormat.of();

    private Keys() {
    }

    static String chunk(B3Digest digest) {
        return sharded(CHUNKS, digest);
    }

    static String blob(B3Digest digest) {
        return sharded(BLOBS, digest);
    }

    static String directory(B3Digest digest) {
        return sharded(DIRECTORIES, digest);
    }

    static String root(Name name) {
        return ROOTS + HEX.formatHex(name.bytesUnsafe());
    }

    private static String sharded(String kind, B3Digest digest) {
        String hex = digest.toHex();
        return kind + hex.substring(0, 2) + "/" + hex;
    }

    /** The digest a content-addressed key of {@code kind} names, or empty for a foreign key. */
    static Optional<B3Digest> digestOf(String kind, String key) {
        if (!key.startsWith(kind)) {
            return Optional.empty();
        }
        String rest = key.substring(kind.length());
        if (rest.length() != 3 + 2 * B3Digest.LENGTH || rest.charAt(2) != '/' || !rest.startsWith(rest.substring(3, 5))) {
            return Optional.empty();
        }
        try {
            return Optional.of(B3Digest.of(HEX.parseHex(rest.substring(3))));
        } catch (IllegalArgumentException | InvalidDataException e) {
            return Optional.empty();
        }
    }

    /** The root name a roots/ key encodes, or empty for a foreign key. */
    static Optional<Name> rootName(String key) {
        if (!key.startsWith(ROOTS)) {
            return Optional.empty();
        }
        try {
            return Optional.of(Name.of(HEX.parseHex(key.substring(ROOTS.length()))));
        } catch (IllegalArgumentException | InvalidDataException e) {
            return Optional.empty();
        }
    }
}
