package castore.service;

import java.io.IOException;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;

/**
 * The three services a command works with. Closing the Store closes each distinct backend
 * once, in reverse order of opening.
 */
public record Store(BlobService blobs, DirectoryService directories, RootService roots, List<AutoCloseable> resources)
        implements AutoCloseable {

    public Store(BlobService blobs, DirectoryService directories, RootService roots) {
        this(blobs, directories, roots, List.of(roots, directories, blobs));
    }

    /** This store with one or more services replaced by those of other stores (which it then owns too). */
    public Store with(BlobService blobs, DirectoryService directories, List<AutoCloseable> extra) {
        List<AutoCloseable> all = new ArrayList<>(extra);
        all.addAll(resources);
        return new Store(blobs, directories, roots, all);
    }

    /** The backend's whole-store operations, if the blob and directory store offers them. */
    public java.util.Optional<StoreMaintenance> maintenance() {
        for (AutoCloseable c : resources) {
            if (c instanceof StoreMaintenance m) {
                return java.util.Optional.of(m);
            }
        }
        return java.util.Optional.empty();
    }

    /** The backend's uncommitted writes, if it has writes that need a commit to be durable (the local store). */
    public java.util.Optional<UncommittedWrites> uncommittedWrites() {
        for (AutoCloseable c : resources) {
            if (c instanceof UncommittedWrites w) {
                return java.util.Optional.of(w);
            }
        }
        return java.util.Optional.empty();
    }

    /** The directories of this machine where the backends behind this store keep data (none for remote ones). */
    public List<java.nio.file.Path> dataDirectories() {
        return resources.stream().filter(DataDirectory.class::isInstance)
                .flatMap(r -> ((DataDirectory) r).dataDirectory().stream()).distinct().toList();
    }

    /** The warm-ups the backends behind this store offer (none for most). */
    public List<BackendWarmUp> warmUps() {
        return resources.stream().filter(BackendWarmUp.class::isInstance).map(BackendWarmUp.class::cast).distinct().toList();
    }

    /** The layers over the backends (a cache) that can put one like themselves over a scratch store; outermost first. */
    public List<ScratchLayer> scratchLayers() {
        return resources.stream().filter(ScratchLayer.class::isInstance).map(ScratchLayer.class::cast).distinct().toList();
    }

    /** {@code scratch} behind each of {@link #scratchLayers()}, in the same order; files under {@code directory}. */
    public static Store layeredLike(List<ScratchLayer> layers, Store scratch, java.nio.file.Path directory) throws IOException {
        Store layered = scratch;
        for (int i = layers.size() - 1; i >= 0; i--) {
            try {
                layered = layers.get(i).over(layered, java.nio.file.Files.createDirectories(directory.resolve("layer-" + i)));
            } catch (IOException | RuntimeException e) {
                layered.close();
                throw e;
            }
        }
        return layered;
    }

    @Override
    public void close() throws IOException {
        IOException first = null;
        var closed = new IdentityHashMap<Object, Boolean>();
        for (AutoCloseable c : resources) {
            if (c == null || closed.put(c, Boolean.TRUE) != null) {
                continue;
            }
            try {
                c.close();
            } catch (Exception e) {
                if (first == null) {
                    first = e instanceof IOException io ? io : new IOException(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
