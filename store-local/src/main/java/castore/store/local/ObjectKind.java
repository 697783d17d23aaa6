package castore.store.local;

import java.util.Locale;

/** What a pack entry holds. The code is the byte stored in packs and indexes. */
enum ObjectKind {
    /** Raw bytes of one chunk; a blob of one chunk is stored as just that chunk. */
    CHUNK(1),
    /** The chunk list of a blob of two or more chunks ({@link ChunkList}). */
    BLOB(2),
    /** A Directory in its canonical protobuf encoding. */
    DIRECTORY(3);

    final int code;

    ObjectKind(int code) {
        this.code = code;
    }

    static ObjectKind of(int code) {
        return switch (code) {
            case 1 -> CHUNK;
            case 2 -> BLOB;
            case 3 -> DIRECTORY;
            default -> null;
        };
    }

    String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
