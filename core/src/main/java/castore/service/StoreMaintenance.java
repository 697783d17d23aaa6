package castore.service;

import castore.model.B3Digest;
import java.io.Closeable;
import java.io.IOException;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Whole-store operations a backend offers beyond the three services: checking every stored
 * object, and garbage collection. A backend that has it puts an object implementing this
 * interface into {@link Store#resources()}.
 */
public interface StoreMaintenance {

    /**
     * Keeps writers (imports, in this and other processes) out of the store until closed.
     * Throws {@link StoreBusyException} if a writer is active now. GC marks and sweeps under it,
     * so nothing written during a GC can be swept.
     */
    Closeable exclusive() throws IOException;

    /**
     * Re-hashes every stored chunk, blob and directory and checks its structure, reporting each
     * problem (one line naming the object) to {@code problem}. Returns the number of objects
     * checked and, where the backend keeps it, which blobs it found sound.
     */
    Verification verifyStored(Consumer<String> problem) throws IOException;

    /**
     * What {@link #verifyStored} did: the objects it checked, and the blobs it found whole and
     * re-hashing to their digest. A caller that then checks what the roots reach need not ask a
     * remote store about those again (one request per file).
     */
    record Verification(long objectsChecked, SoundBlobs soundBlobs) {
    }

    /** Blobs a verification found sound, with their size. */
    @FunctionalInterface
    interface SoundBlobs {
        /** Nothing known: every blob is to be asked about. */
        SoundBlobs NONE = blob -> -1;

        /** The size of {@code blob} if the verification found it sound; -1 if not, or not known. */
        long size(B3Digest blob);
    }

    /**
     * Deletes every blob (and its chunks, unless another live blob uses them) not in
     * {@code liveBlobs} and every Directory not in {@code liveDirectories}. The caller holds
     * {@link #exclusive()}.
     */
    SweepResult sweep(Set<B3Digest> liveBlobs, Set<B3Digest> liveDirectories) throws IOException;

    record SweepResult(long objectsRemoved, long bytesFreed) {
    }
}
