package castore.grpc;

import castore.chunk.FastCdc;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A memory backend that chunks like the local store (FastCDC, tvix parameters) and keeps chunks
 * by digest, so a server over it serves chunks by digest and deduplicates them. Counts the bytes
 * of new chunks, for deduplication tests.
 */
final class ChunkingBlobService implements BlobService {
    final ConcurrentHashMap<B3Digest, byte[]> chunks = new ConcurrentHashMap<>();
    final ConcurrentHashMap<B3Digest, List<ChunkMeta>> blobs = new ConcurrentHashMap<>();
    final AtomicLong newChunkBytes = new AtomicLong();
    /** Blobs opened whole (a server's Read of a blob digest) and chunks opened by digest. */
    final java.util.concurrent.atomic.AtomicInteger blobOpens = new java.util.concurrent.atomic.AtomicInteger();
    final java.util.concurrent.atomic.AtomicInteger chunkOpens = new java.util.concurrent.atomic.AtomicInteger();

    @Override
    public boolean has(B3Digest digest) {
        return blobs.containsKey(digest);
    }

    @Override
    public Optional<BlobReader> open(B3Digest digest) {
        List<ChunkMeta> list = blobs.get(digest);
        if (list != null) {
            blobOpens.incrementAndGet();
        }
        return list == null ? Optional.empty() : Optional.of(reader(list));
    }

    @Override
    public Optional<List<ChunkMeta>> chunks(B3Digest digest) {
        return Optional.ofNullable(blobs.get(digest));
    }

    @Override
    public boolean hasChunk(B3Digest digest) {
        return chunks.containsKey(digest) || blobs.containsKey(digest);
    }

    @Override
    public Optional<BlobReader> openChunk(B3Digest digest) {
        chunkOpens.incrementAndGet();
        if (blobs.containsKey(digest)) {
            return open(digest);
        }
        byte[] chunk = chunks.get(digest);
        return chunk == null ? Optional.empty() : Optional.of(reader(List.of(new ChunkMeta(digest, chunk.length))));
    }

    private BlobReader reader(List<ChunkMeta> list) {
        long[] starts = new long[list.size()];
        long size = 0;
        for (int i = 0; i < list.size(); i++) {
            starts[i] = size;
            size += list.get(i).size();
        }
        long total = size;
        return new BlobReader() {
            @Override
            public long size() {
                return total;
            }

            @Override
            public int read(long position, ByteBuffer dst) {
                if (position >= total) {
                    return -1;
                }
                int n = 0;
                while (dst.hasRemaining() && position < total) {
                    int i = Arrays.binarySearch(starts, position);
                    i = i >= 0 ? i : -i - 2;
                    byte[] chunk = chunks.get(list.get(i).digest());
                    int offset = (int) (position - starts[i]);
                    int len = Math.min(dst.remaining(), chunk.length - offset);
                    dst.put(chunk, offset, len);
                    position += len;
                    n += len;
                }
                return n;
            }
        };
    }

    @Override
    public BlobWriter create() {
        return new BlobWriter() {
            private final ByteArrayOutputStream buffer = new ByteArrayOutputStream();
            private long stored;
            private B3Digest result;

            @Override
            public void write(ByteBuffer data) {
                byte[] b = new byte[data.remaining()];
                data.get(b);
                buffer.write(b, 0, b.length);
            }

            @Override
            public B3Digest finish() {
                if (result != null) {
                    return result;
                }
                byte[] all = buffer.toByteArray();
                List<ChunkMeta> list = new ArrayList<>();
                FastCdc cdc = FastCdc.TVIX;
                for (int offset = 0; offset < all.length; ) {
                    int n = cdc.cut(all, offset, Math.min(cdc.maxSize(), all.length - offset));
                    byte[] chunk = Arrays.copyOfRange(all, offset, offset + n);
                    B3Digest d = Blake3.digest(chunk);
                    if (chunks.putIfAbsent(d, chunk) == null) {
                        stored += n;
                        newChunkBytes.addAndGet(n);
                    }
                    list.add(new ChunkMeta(d, n));
                    offset += n;
                }
                result = Blake3.digest(all);
                blobs.putIfAbsent(result, List.copyOf(list));
                return result;
            }

            @Override
            public long size() {
                return buffer.size();
            }

            @Override
            public long bytesStored() {
                return stored;
            }

            @Override
            public void close() throws IOException {
            }
        };
    }
}
