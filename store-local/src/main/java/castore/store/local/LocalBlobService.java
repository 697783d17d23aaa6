package castore.store.local;

import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import java.io.IOException;
import java.util.List;
import java.util.Optional;

/**
 * Blobs in packs: a blob of one chunk is that CHUNK entry (chunk digest = blob digest), a blob of
 * several chunks is a BLOB entry listing them. Every chunk is itself a valid blob of its own
 * digest, so {@link #has} and {@link #open} also answer for chunks.
 */
final class LocalBlobService implements BlobService {
    private final LocalStore store;
    private final PackStore packs;

    LocalBlobService(LocalStore store, PackStore packs) {
        this.store = store;
        this.packs = packs;
    }

    @Override
    public boolean has(B3Digest digest) throws IOException {
        return packs.find(ObjectKind.CHUNK, digest) != null || packs.find(ObjectKind.BLOB, digest) != null;
    }

    @Override
    public Optional<BlobReader> open(B3Digest digest) throws IOException {
        // A blob of one chunk: the reader reuses the location found here instead of searching again.
        Location chunk = packs.find(ObjectKind.CHUNK, digest);
        if (chunk != null) {
            return Optional.of(new LocalBlobReader(packs, digest, ChunkList.single(digest, chunk.length()), chunk));
        }
        return chunkList(digest).map(list -> new LocalBlobReader(packs, digest, list, null));
    }

    @Override
    public BlobWriter create() throws IOException {
        store.beginWrite();
        return new LocalBlobWriter(store, packs);
    }

    @Override
    public Optional<List<ChunkMeta>> chunks(B3Digest digest) throws IOException {
        return chunkList(digest).map(ChunkList::toMetas);
    }

    Optional<ChunkList> chunkList(B3Digest digest) throws IOException {
        Location chunk = packs.find(ObjectKind.CHUNK, digest);
        if (chunk != null) {
            return Optional.of(ChunkList.single(digest, chunk.length()));
        }
        Location blob = packs.find(ObjectKind.BLOB, digest);
        if (blob == null) {
            return Optional.empty();
        }
        return Optional.of(ChunkList.decode(blob.source().read(blob), blob));
    }
}
