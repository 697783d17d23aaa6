package castore.service.memory;

import castore.model.InvalidDataException;
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
        // Nothing follows "memory://": anything that does (a path, a query) would be silently ignored.
        String path = address.getRawPath() == null ? "" : address.getRawPath();
        if (address.getRawAuthority() != null || !(path.isEmpty() || path.equals("/")) || address.getRawQuery() != null
                || address.getRawFragment() != null) {
            throw new InvalidDataException("invalid address '" + address + "': memory:// takes nothing after it");
        }
        return new Store(new MemoryBlobService(), new MemoryDirectoryService(), new MemoryRootService());
    }
}
