package castore.service.memory;

import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.StoreProvider;
import java.net.URI;
import java.util.Set;

/** {@code memory://}: a fresh in-memory store per open, gone when closed. For tests and tools. */
public final class MemoryStoreProvider implements StoreProvider {
    @Override
    public Set<String> schemes() {
        return Set.of("memory");
    }

    @Override
    public Store open(URI address, StoreOptions options) {
        return new Store(new MemoryBlobService(), new MemoryDirectoryService(), new MemoryRootService());
    }
}
