package castore.cli;

import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.StoreProvider;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import java.net.URI;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Test-only {@code testmem://NAME}: memory stores that outlive one command, so that in-process
 * tests can run import, then ls, then cat on the same data. {@code testoom://} fails to open
 * with an OutOfMemoryError, as a command that runs out of memory on its own thread would.
 */
public final class SharedMemoryStoreProvider implements StoreProvider {
    private static final Map<String, Store> STORES = new ConcurrentHashMap<>();

    @Override
    public Set<String> schemes() {
        return Set.of("testmem", "testoom");
    }

    @Override
    public Store open(URI address, StoreOptions options) {
        if (address.getScheme().equals("testoom")) {
            throw new OutOfMemoryError("Java heap space");
        }
        Store shared = STORES.computeIfAbsent(address.getAuthority(),
                k -> new Store(new MemoryBlobService(), new MemoryDirectoryService(), new MemoryRootService()));
        // No resources: closing a command's Store leaves the shared one open.
        return new Store(shared.blobs(), shared.directories(), shared.roots(), List.of());
    }
}
