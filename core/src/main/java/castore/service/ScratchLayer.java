package castore.service;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A layer a store puts over its backend's services (a cache) that can put one like it over a
 * scratch store: a warm-up that serves synthetic data from that scratch store then compiles the
 * layer's request path too, without touching the real store or the layer's real data.
 */
public interface ScratchLayer {
    /**
     * {@code scratch} behind a layer configured like this one, keeping whatever files it needs under
     * {@code directory} (which exists and belongs to the caller); the returned store owns {@code scratch}.
     */
    Store over(Store scratch, Path directory) throws IOException;
}
