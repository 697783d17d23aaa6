package castore.service.cache;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * A blob's chunk list on disk: BLAKE3 of the body, then per chunk its digest and size (8 bytes
 * big-endian). The leading checksum catches a damaged file; the list itself came verified-by-use
 * from the inner service (every chunk read through it is hash-checked).
 */
final class ChunkListCodec implements TieredCache.Codec<List<ChunkMeta>> {
    private static final int ENTRY = B3Digest.LENGTH + Long.BYTES;

    @Override
    public byte[] encode(List<ChunkMeta> chunks) {
        byte[] body = body(chunks);
        byte[] out = new byte[B3Digest.LENGTH + body.length];
        Blake3.digest(body).copyTo(out, 0);
        System.arraycopy(body, 0, out, B3Digest.LENGTH, body.length);
        return out;
    }

    /**
     * What names one chunk list among all lists of a blob: BLAKE3 of its body (the checksum it
     * carries on disk). A blob's "bound" mark holds it, so that the mark vouches for the list
     * that was checked and for no other list a remote may give for the blob later.
     */
    static B3Digest listDigest(List<ChunkMeta> chunks) {
        return Blake3.digest(body(chunks));
    }

    private static byte[] body(List<ChunkMeta> chunks) {
        ByteBuffer body = ByteBuffer.allocate(chunks.size() * ENTRY);
        byte[] digest = new byte[B3Digest.LENGTH];
        for (ChunkMeta c : chunks) {
            c.digest().copyTo(digest, 0);
            body.put(digest).putLong(c.size());
        }
        return body.array();
    }

    @Override
    public List<ChunkMeta> decodeVerified(B3Digest key, byte[] bytes) throws CorruptedDataException {
        if (bytes.length < B3Digest.LENGTH || (bytes.length - B3Digest.LENGTH) % ENTRY != 0
                || !Blake3.digest(bytes, B3Digest.LENGTH, bytes.length - B3Digest.LENGTH)
                        .equals(B3Digest.of(java.util.Arrays.copyOf(bytes, B3Digest.LENGTH)))) {
            throw new CorruptedDataException("cached chunk list of " + key + " is corrupted");
        }
        ByteBuffer in = ByteBuffer.wrap(bytes, B3Digest.LENGTH, bytes.length - B3Digest.LENGTH);
        List<ChunkMeta> chunks = new ArrayList<>();
        byte[] digest = new byte[B3Digest.LENGTH];
        while (in.hasRemaining()) {
            in.get(digest);
            chunks.add(new ChunkMeta(B3Digest.of(digest), in.getLong()));
        }
        return List.copyOf(chunks);
    }

    @Override
    public long weight(List<ChunkMeta> value) {
        return 64L + (long) value.size() * (ENTRY + 32);
    }
}
