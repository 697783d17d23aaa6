package castore.grpc;

import castore.model.B3Digest;
import castore.service.BlobService;
import castore.service.BlobWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;

/** Seeded test data and blob helpers. */
final class TestData {
    private TestData() {
    }

    static byte[] random(long seed, int length) {
        byte[] data = new byte[length];
        new SplittableRandom(seed).nextBytes(data);
        return data;
    }

    static B3Digest put(BlobService blobs, byte[] data) throws IOException {
        try (BlobWriter w = blobs.create()) {
            // Several writes of odd sizes, as an importer would do.
            int step = 100_003;
            for (int i = 0; i < data.length; i += step) {
                w.write(data, i, Math.min(step, data.length - i));
            }
            return w.finish();
        }
    }

    static byte[] readAll(BlobService blobs, B3Digest digest) throws IOException {
        try (var reader = blobs.open(digest).orElseThrow()) {
            byte[] out = new byte[Math.toIntExact(reader.size())];
            ByteBuffer dst = ByteBuffer.wrap(out);
            while (dst.hasRemaining()) {
                int n = reader.read(dst.position(), dst);
                if (n <= 0) {
                    throw new IOException("short read at " + dst.position());
                }
            }
            return out;
        }
    }
}
