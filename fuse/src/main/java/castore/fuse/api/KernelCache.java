package castore.fuse.api;

/**
 * Pushes file content into the kernel's page cache ahead of any READ (FUSE_NOTIFY_STORE), for a
 * filesystem whose content never changes: after one random read has fetched and verified a
 * whole storage unit, the rest of it can be handed to the kernel so later reads of it are page
 * cache hits instead of requests. Best effort and asynchronous: an offer may be dropped (busy,
 * node no longer known to the kernel) and never blocks the caller, and the bytes are copied
 * before it returns, so they may come from a buffer the caller reuses.
 */
public interface KernelCache {
    /** A cache that takes nothing: for transports without notifications. */
    KernelCache NONE = (nodeId, offset, data, from, length) -> false;

    /**
     * Offers {@code data[from, from + length)} as the content of node {@code nodeId} at file
     * offset {@code offset}. {@code offset} must be page aligned, and {@code length} a multiple of
     * the page size unless the range ends at end of file. The bytes are copied before this
     * returns: the array is the caller's again. A range longer than the cache can hold at once
     * is cut to its first whole pages. Returns false if the offer was dropped.
     */
    boolean offer(long nodeId, long offset, byte[] data, int from, int length);
}
