package castore.service.memory;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/** Blobs held whole in memory; each is reported as a single chunk. */
public final class MemoryBlobService implements BlobService {
    private final ConcurrentHashMap<B3Digest, byte[]> blobs = new ConcurrentHashMap<>();

    @Override
    public boolean has(B3Digest digest) {
        return blobs.containsKey(digest);
    }

    @Override
    public Optional<BlobReader> open(B3Digest digest) {
        byte[] data = blobs.get(digest);
        if (data == null) {
            return Optional.empty();
        }
        return Optional.of(new BlobReader() {
            @Override
            public long size() {
                return data.length;
            }

            @Override
            public int read(long position, ByteBuffer dst) {
                if (position >= data.length) {
                    return -1;
                }
                int n = (int) Math.min(dst.remaining(), data.length - position);
                dst.put(data, (int) position, n);
                return n;
            }
        });
    }

    @Override
    public BlobWriter create() {
        return new BlobWriter() {
            private final ByteArrayOutputStream buffer = new ByteArrayOutputStream();
            private final Blake3.Hasher hasher = Blake3.newHasher();
            private long stored;
            private B3Digest result;

            @Override
            public void write(ByteBuffer data) throws IOException {
                if (result != null) {
                    throw new IOException("blob writer already finished");
                }
                byte[] b = new byte[data.remaining()];
                data.get(b);
                buffer.write(b, 0, b.length);
                hasher.update(b);
            }

            @Override
            public B3Digest finish() {
                if (result == null) {
                    result = hasher.digest();
                    byte[] bytes = buffer.toByteArray();
                    if (blobs.putIfAbsent(result, bytes) == null) {
                        stored = bytes.length;
                    }
                }
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
            public void close() {
            }
        };
    }

    @Override
    public Optional<List<ChunkMeta>> chunks(B3Digest digest) {
        byte[] data = blobs.get(digest);
        return data == null ? Optional.empty() : Optional.of(List.of(new ChunkMeta(digest, data.length)));
    }
}
