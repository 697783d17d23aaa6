package castore.fuse.server;

import castore.fuse.abi.DirentWriter;

import java.lang.foreign.MemorySegment;

/**
 * A reusable reply buffer: a heap array with room for the out header plus the largest body (a
 * max-size READ), the channel's per-buffer call state (errno capture for the native write), and a
 * dirent packer. Replies are encoded on the heap (cheap accessors, see {@code Wire}) and written
 * straight from the array by a critical write(2), so there is no copy to native memory. One
 * thread uses it at a time.
 */
public final class ReplyBuffer {
    private final byte[] array;
    private final MemorySegment segment;
    private final MemorySegment callState;
    private final DirentWriter dirents = new DirentWriter();

    public ReplyBuffer(byte[] array, MemorySegment callState) {
        this.array = array;
        this.segment = MemorySegment.ofArray(array);
        this.callState = callState;
    }

    public byte[] array() {
        return array;
    }

    /** The array as a heap segment, made once: for the channel's write. */
    public MemorySegment segment() {
        return segment;
    }

    /** Scratch memory the channel needs for its write (e.g. the errno capture), or NULL. */
    public MemorySegment callState() {
        return callState;
    }

    DirentWriter dirents() {
        return dirents;
    }
}
