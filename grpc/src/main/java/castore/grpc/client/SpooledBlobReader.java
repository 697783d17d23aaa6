package castore.grpc.client;

import castore.grpc.proto.ReadBlobRequest;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.CorruptedDataException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A remote blob read whole: when the server gives no chunk list (tvix backends without chunking)
 * or a chunk too large to hold in memory, the blob is downloaded once into an unlinked temporary
 * file, hashed, and read from there. Positional reads of a FileChannel are thread-safe.
 */
final class SpooledBlobReader implements BlobReader {
    private final B3Digest blob;
    private final FileChannel file;
    private final long size;

    /** Downloads and verifies now. {@code expectedSize} is -1 when the server gave no chunk list. */
    SpooledBlobReader(Connection connection, B3Digest blob, long expectedSize) throws IOException {
        this.blob = blob;
        Path path = Files.createTempFile("castore-blob-", ".tmp");
        this.file = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        Files.delete(path);
        try {
            this.size = download(connection, expectedSize);
        } catch (IOException | RuntimeException e) {
            file.close();
            throw e;
        }
    }

    private long download(Connection connection, long expectedSize) throws IOException {
        Blake3.Hasher hasher = Blake3.newHasher();
        long total = 0;
        var request = ReadBlobRequest.newBuilder().setDigest(blob.toByteString()).build();
        try (var stream = InboundStream.open(connection, ReadMethod.READ, request, "read blob " + blob)) {
            while (stream.hasNext()) {
                ByteBuffer data = ByteBuffer.wrap(stream.next());
                total += data.remaining();
                if (expectedSize >= 0 && total > expectedSize) {
                    throw new CorruptedDataException("blob " + blob + " from " + connection.address + " is longer than its size " + expectedSize);
                }
                hasher.update(data.duplicate());
                while (data.hasRemaining()) {
                    file.write(data);
                }
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        if (expectedSize >= 0 && total != expectedSize) {
            throw new CorruptedDataException("blob " + blob + " from " + connection.address + " has " + total + " bytes, not " + expectedSize);
        }
        if (!hasher.digest().equals(blob)) {
            throw new CorruptedDataException("blob " + blob + " from " + connection.address + " does not match its digest");
        }
        return total;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public int read(long position, ByteBuffer dst) throws IOException {
        if (position < 0) {
            throw new IllegalArgumentException("negative position " + position);
        }
        if (position >= size) {
            return -1;
        }
        int limit = dst.limit();
        dst.limit((int) Math.min(limit, dst.position() + (size - position)));
        try {
            int total = 0;
            while (dst.hasRemaining()) {
                int n = file.read(dst, position + total);
                if (n < 0) {
                    throw new IOException("temporary copy of blob " + blob + " truncated");
                }
                total += n;
            }
            return total;
        } finally {
            dst.limit(limit);
        }
    }

    @Override
    public void close() throws IOException {
        file.close();
    }
}
