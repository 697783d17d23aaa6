package castore.service;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;

/** Adapts a positional {@link BlobReader} to a sequential stream. */
final class BlobInputStream extends InputStream {
    private final BlobReader reader;
    private long position;

    BlobInputStream(BlobReader reader, long position) {
        this.reader = reader;
        this.position = position;
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) == 1 ? one[0] & 0xff : -1;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) {
            return 0;
        }
        int n = reader.read(position, ByteBuffer.wrap(b, off, len));
        if (n > 0) {
            position += n;
        }
        return n;
    }

    @Override
    public long skip(long n) {
        long skip = Math.max(0, Math.min(n, reader.size() - position));
        position += skip;
        return skip;
    }

    @Override
    public int available() {
        return (int) Math.min(Integer.MAX_VALUE, Math.max(0, reader.size() - position));
    }
}
