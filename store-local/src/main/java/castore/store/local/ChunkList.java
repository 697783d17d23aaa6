package castore.store.local;

import castore.model.B3Digest;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * The chunk list of a blob of several chunks, as stored in a BLOB entry:
 * {@code u64 blobSize, u32 count, count x (digest[32], u32 size), u32 crc32c}. The checksum
 * guards the list itself (the chunks are guarded by their digests): a damaged list must not
 * splice verified chunks into wrong bytes.
 */
record ChunkList(long blobSize, B3Digest[] digests, int[] sizes) {
    private static final int ENTRY = B3Digest.LENGTH + 4;

    static ChunkList of(List<ChunkMeta> chunks) {
        int n = chunks.size();
        B3Digest[] digests = new B3Digest[n];
        int[] sizes = new int[n];
        for (int i = 0; i < n; i++) {
            digests[i] = chunks.get(i).digest();
            sizes[i] = Math.toIntExact(chunks.get(i).size());
        }
        return withSum(digests, sizes);
    }

    /** A blob stored as one chunk. */
    static ChunkList single(B3Digest digest, int size) {
        return withSum(new B3Digest[] {digest}, new int[] {size});
    }

    private static ChunkList withSum(B3Digest[] digests, int[] sizes) {
        long sum = 0;
        for (int size : sizes) {
            sum += size;
        }
        return new ChunkList(sum, digests, sizes);
    }

    int count() {
        return digests.length;
    }

    List<ChunkMeta> toMetas() {
        List<ChunkMeta> out = new ArrayList<>(digests.length);
        for (int i = 0; i < digests.length; i++) {
            out.add(new ChunkMeta(digests[i], sizes[i]));
        }
        return out;
    }

    byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(12 + digests.length * ENTRY + 4).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(blobSize).putInt(digests.length);
        byte[] d = new byte[B3Digest.LENGTH];
        for (int i = 0; i < digests.length; i++) {
            digests[i].copyTo(d, 0);
            b.put(d).putInt(sizes[i]);
        }
        CRC32C crc = new CRC32C();
        crc.update(b.array(), 0, b.position());
        b.putInt((int) crc.getValue());
        return b.array();
    }

    /**
     * Decodes and checks the list stored at {@code at}, named in errors. The name is made only for
     * an error: every open of a blob of several chunks decodes its list.
     */
    static ChunkList decode(byte[] bytes, Location at) throws CorruptedDataException {
        if (bytes.length < 16 || (bytes.length - 16) % ENTRY != 0) {
            throw new CorruptedDataException(at.describe() + ": chunk list has an impossible length " + bytes.length);
        }
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, bytes.length - 4);
        if ((int) crc.getValue() != b.getInt(bytes.length - 4)) {
            throw new CorruptedDataException(at.describe() + ": chunk list fails its checksum");
        }
        long blobSize = b.getLong();
        int n = b.getInt();
        if (n != (bytes.length - 16) / ENTRY) {
            throw new CorruptedDataException(at.describe() + ": chunk list count " + n + " does not match its length");
        }
        B3Digest[] digests = new B3Digest[n];
        int[] sizes = new int[n];
        for (int i = 0; i < n; i++) {
            byte[] d = new byte[B3Digest.LENGTH];
            b.get(d);
            digests[i] = B3Digest.wrap(d);
            sizes[i] = b.getInt();
            if (sizes[i] < 0) {
                throw new CorruptedDataException(at.describe() + ": chunk " + i + " has a negative size");
            }
        }
        ChunkList list = withSum(digests, sizes);
        if (list.blobSize() != blobSize) {
            throw new CorruptedDataException(at.describe() + ": chunk sizes add up to " + list.blobSize() + ", not " + blobSize);
        }
        return list;
    }
}
