package castore.fuse.server;

import castore.fuse.api.BackingFiles;
import java.lang.foreign.MemorySegment;

/** Where replies go: the /dev/fuse channel a request was read from (any thread may write). */
public interface Channel {
    /**
     * Writes one whole reply, bytes {@code [0, length)} of {@code buffer}, in a single write.
     * Returns 0 or a negative errno (ENOENT: the kernel no longer waits for this request).
     */
    int write(ReplyBuffer buffer, int length);

    /**
     * Writes one whole notification, bytes {@code [0, length)} of native {@code message}, in a
     * single write that may wait in the kernel (FUSE_NOTIFY_STORE takes page locks), so never as
     * a critical call. {@code callState} is the writer's own errno capture. Returns 0 or a
     * negative errno.
     */
    int notify(MemorySegment message, int length, MemorySegment callState);

    /** Backing files registered on this channel's connection, or null if the transport has none. */
    default BackingFiles backingFiles() {
        return null;
    }
}
