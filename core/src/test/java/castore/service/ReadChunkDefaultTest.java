package castore.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.memory.MemoryBlobService;
import java.io.IOException;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** {@link BlobService#readChunk}'s default hashes what it read: a reader's own checks do not bind it to the digest asked for. */
class ReadChunkDefaultTest {

    @Test
    void bytesThatAreNotTheDigestAskedForAreAnErrorNeverReturned() throws IOException {
        try (MemoryBlobService memory = new MemoryBlobService()) {
            byte[] other = BlobServiceContract.randomBytes(1, 4000);
            B3Digest otherDigest;
            try (BlobWriter w = memory.create()) {
                w.write(other, 0, other.length);
                otherDigest = w.finish();
            }
            B3Digest asked = Blake3.digest(BlobServiceContract.randomBytes(2, 4000));
            // A service whose reader for `asked` serves another blob of the same size (as a
            // remote's chunk list of valid chunks of other data would).
            BlobService lying = new ForwardingBlobService(memory) {
                @Override
                public Optional<BlobReader> open(B3Digest digest) throws IOException {
                    return inner.open(digest.equals(asked) ? otherDigest : digest);
                }
            };
            assertThatThrownBy(() -> lying.readChunk(new ChunkMeta(asked, other.length)))
                    .isInstanceOf(CorruptedDataException.class).hasMessageContaining(asked.toString());
            assertThat(lying.readChunk(new ChunkMeta(otherDigest, other.length))).hasValueSatisfying(b -> assertThat(b).isEqualTo(other));
        }
    }
}
