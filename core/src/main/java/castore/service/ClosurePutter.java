package castore.service;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.InvalidDataException;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

/**
 * Receives a Directory closure leaves first and checks that each Directory's children came
 * before it (or are already stored) with matching sizes. {@link #finish()} returns the root:
 * the last Directory, which must reach every other one sent. {@link #close()} abandons a closure
 * not finished: a caller that fails part way closes it, so a remote call does not stay open.
 */
public interface ClosurePutter extends AutoCloseable {

    void put(Directory directory) throws IOException;

    /** Completes the closure and returns the digest of the root (the last Directory put). */
    B3Digest finish() throws IOException;

    /**
     * Abandons the closure unless it was finished; nothing it holds is stored. Idempotent.
     * Services that send nothing before {@link #finish()} hold nothing to release.
     */
    @Override
    default void close() {
    }

    /** Puts each Directory into the service as it arrives; the service checks children. */
    final class Simple implements ClosurePutter {
        private final DirectoryService service;
        private final Map<B3Digest, Long> seen = new HashMap<>();
        private B3Digest last;

        public Simple(DirectoryService service) {
            this.service = service;
        }

        @Override
        public void put(Directory directory) throws IOException {
            for (var node : directory.entries().values()) {
                if (node instanceof DirectoryNode d) {
                    Long size = seen.get(d.digest());
                    if (size != null && size != d.size()) {
                        throw new InvalidDataException("child " + d.digest() + " has size " + size + ", node says " + d.size());
                    }
                }
            }
            last = service.put(directory);
            seen.put(last, directory.size());
        }

        @Override
        public B3Digest finish() {
            if (last == null) {
                throw new InvalidDataException("empty closure");
            }
            return last;
        }
    }
}
