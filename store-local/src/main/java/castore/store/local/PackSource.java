package castore.store.local;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/** A pack objects can be read from: published (mapped) or still being written by this process. */
sealed interface PackSource permits Pack, PackWriter {

    /**
     * The payload at {@code location}, after checking that the entry header in the pack names the
     * same kind, digest and length. The payload itself is not verified here.
     */
    byte[] read(Location location) throws IOException;

    /**
     * The payload at {@code location} without the header check, for callers that verify it
     * against its digest anyway (the hash binds it to the index entry more strongly): one read
     * instead of two.
     */
    default byte[] readPayload(Location location) throws IOException {
        return read(location);
    }

    /** {@link #readPayload} into {@code dst[0, length)}, which must be large enough. */
    default void readPayloadInto(Location location, byte[] dst) throws IOException {
        byte[] payload = readPayload(location);
        System.arraycopy(payload, 0, dst, 0, payload.length);
    }

    /** {@link #readPayload} into {@code dst[0, length)} (native or heap memory), which must be large enough. */
    default void readPayloadInto(Location location, MemorySegment dst) throws IOException {
        byte[] payload = readPayload(location);
        MemorySegment.copy(MemorySegment.ofArray(payload), 0, dst, 0, payload.length);
    }

    /** The pack's file name, for messages. */
    String describe();

    /** Hints that {@code location} will be read soon, so its pages can be fetched ahead (no-op by default). */
    default void willNeed(Location location) {
    }

    /**
     * Hints that metadata around {@code location} will be read soon (a walk reads a tree's
     * Directories in about the order they were stored); no-op by default.
     */
    default void metadataAhead(Location location) {
    }
}
