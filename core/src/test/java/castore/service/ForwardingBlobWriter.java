package castore.service;

import castore.model.B3Digest;
import java.io.IOException;
import java.nio.ByteBuffer;

/** A {@link BlobWriter} that passes every call to another: a test overrides what it changes. */
public class ForwardingBlobWriter implements BlobWriter {
    protected final BlobWriter inner;

    public ForwardingBlobWriter(BlobWriter inner) {
        this.inner = inner;
    }

    @Override
    public void write(ByteBuffer data) throws IOException {
        inner.write(data);
    }

    @Override
    public B3Digest finish() throws IOException {
        return inner.finish();
    }

    @Override
    public long size() {
        return inner.size();
    }

    @Override
    public long bytesStored() {
        return inner.bytesStored();
    }

    @Override
    public void close() throws IOException {
        inner.close();
    }
}
