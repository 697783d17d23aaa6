package castore.fuse.server;

/** Where replies go: the /dev/fuse channel a request was read from (any thread may write). */
public interface Channel {
    /**
     * Writes one whole reply, bytes {@code [0, length)} of {@code buffer}, in a single write.
     * Returns 0 or a negative errno (ENOENT: the kernel no longer waits for this request).
     */
    int write(ReplyBuffer buffer, int length);
}
