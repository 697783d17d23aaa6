package castore.service;

import castore.model.B3Digest;
import java.io.IOException;
import java.util.List;
import java.util.Optional;

/** A BlobService that passes everything on; tests override what they change or watch. */
public class ForwardingBlobService implements BlobService {
    protected final BlobService inner;

    public ForwardingBlobService(BlobService inner) {
        this.inner = inner;
    }

    @Override
    public boolean has(B3Digest digest) throws IOException {
        return inner.has(digest);
    }

    @Override
    public Optional<BlobReader> open(B3Digest digest) throws IOException {
        return inner.open(digest);
    }

    @Override
    public Optional<List<ChunkMeta>> chunks(B3Digest digest) throws IOException {
        return inner.chunks(digest);
    }

    @Override
    public BlobWriter create() throws IOException {
        return inner.create();
    }
}
