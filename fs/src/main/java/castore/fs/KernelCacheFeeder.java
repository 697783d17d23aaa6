package castore.fs;

import castore.fuse.api.KernelCache;
import castore.service.ChunkedBlobReader;

/**
 * After a random read, hands the rest of the verified chunk it used to the kernel's page cache
 * (FUSE_NOTIFY_STORE): a random 4 KiB read has to fetch and verify a whole chunk (about 256 KiB)
 * anyway, and content never changes, so later reads anywhere in that chunk become page-cache
 * hits instead of requests that would each verify the chunk again. Sequential readers are left
 * to the kernel's own readahead, which already asks for what comes next.
 */
final class KernelCacheFeeder {
    private static final long PAGE = 4096;

    private volatile KernelCache cache = KernelCache.NONE;

    void attach(KernelCache kernelCache) {
        cache = kernelCache;
    }

    /** Called after {@code file} served bytes [offset, end) of node {@code nodeId}, by a sequential stream or not. */
    void afterRead(long nodeId, OpenFile file, long offset, long end, boolean sequential) {
        KernelCache c = cache;
        if (c == KernelCache.NONE || sequential || !(file.reader() instanceof ChunkedBlobReader chunked)) {
            return;
        }
        // The chunk is lent only for this call (it may be a buffer the reader reuses); the cache
        // copies what it takes before the offer returns.
        chunked.lendRecentChunk(offset, (start, data, length) -> {
            if (file.lastPushed(start)) {
                return;
            }
            long chunkEnd = start + length;
            boolean taken = false;
            // Whole pages only (the kernel marks a partial page up to date only at end of file).
            long before = alignUp(start);
            long beforeEnd = offset & -PAGE;
            if (beforeEnd > before) {
                taken = c.offer(nodeId, before, data, (int) (before - start), (int) (beforeEnd - before));
            }
            long after = alignUp(end);
            long afterEnd = chunkEnd == file.size() ? chunkEnd : chunkEnd & -PAGE;
            if (afterEnd > after) {
                taken |= c.offer(nodeId, after, data, (int) (after - start), (int) (afterEnd - after));
            }
            // Only a chunk the cache took counts as pushed: one it dropped (busy) is offered again
            // by the next read in it, or each of its pages would come back as a READ.
            if (taken) {
                file.pushed(start);
            }
        });
    }

    private static long alignUp(long position) {
        return (position + PAGE - 1) & -PAGE;
    }
}
