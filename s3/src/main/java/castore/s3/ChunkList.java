package castore.s3;

import castore.model.B3Digest;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The body of a {@code blobs/} object: the blob's chunks in order. Binary: the magic
 * {@code "CCL1"}, then per chunk its 32-byte digest and its size as 8 bytes big-endian.
 */
final class ChunkList {
    private static final int MAGIC = 0x43434C31; // "CCL1"
    private static final int ENTRY = B3Digest.LENGTH + Long.BYTES;

    private ChunkList() {
    }

    static byte[] encode(List<ChunkMeta> chunks) {
        ByteBuffer out = ByteBuffer.allocate(Integer.BYTES + chunks.size() * ENTRY);
        out.putInt(MAGIC);
        byte[] digest = new byte[B3Digest.LENGTH];
        for (ChunkMeta c : chunks) {
            c.digest().copyTo(digest, 0);
            out.put(digest).putLong(c.size());
        }
        return out.array();
    }

    /** Decodes and checks the structure (not the data); {@code what} names the object in errors. */
    static List<ChunkMeta> decode(byte[] bytes, String what) throws CorruptedDataException {
        if (bytes.length < Integer.BYTES || (bytes.length - Integer.BYTES) % ENTRY != 0) {
            throw new CorruptedDataException(what + ": chunk list has invalid length " + bytes.length);
        }
        ByteBuffer in = ByteBuffer.wrap(bytes);
        if (in.getInt() != MAGIC) {
            throw new CorruptedDataException(what + ": not a chunk list (bad magic)");
        }
        List<ChunkMeta> chunks = new ArrayList<>((bytes.length - Integer.BYTES) / ENTRY);
        long total = 0;
        byte[] digest = new byte[B3Digest.LENGTH];
        while (in.hasRemaining()) {
            in.get(digest);
            long size = in.getLong();
            if (size <= 0 || size > Integer.MAX_VALUE) {
                throw new CorruptedDataException(what + ": chunk " + chunks.size() + " has invalid size " + size);
            }
            try {
                total = Math.addExact(total, size);
            } catch (ArithmeticException overflow) {
                throw new CorruptedDataException(what + ": chunk sizes overflow");
            }
            chunks.add(new ChunkMeta(B3Digest.of(digest), size));
        }
        return List.copyOf(chunks);
    }
}
