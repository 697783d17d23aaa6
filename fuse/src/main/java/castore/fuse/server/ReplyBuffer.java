package castore.fuse.server;

import castore.fuse.abi.DirentWriter;

import java.lang.foreign.MemorySegment;

/**
 * A reusable reply buffer: room for the out header plus the largest body (a max-size READ), the
 * channel's per-buffer call state (errno capture for the native write), and a dirent packer. One
 * thread uses it at a time.
 */
public final class ReplyBuffer {
    private final MemorySegment segment;
    private final MemorySegment callState;
    private final DirentWriter dirents = new DirentWriter();

    public ReplyBuffer(MemorySegment segment, MemorySegment callState) {
        this.segment = segment;
        this.callState = callState;
    }

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
