package castore.store.local;

import castore.service.Store;
import castore.service.StoreContracts;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;

/** The core service contracts, each test on a fresh local store. */
class LocalServiceContractTest extends StoreContracts {
    @TempDir
    Path dir;

    @Override
    protected Store openStore() throws IOException {
        // Small root journal so the contract also exercises compaction into the sorted base.
        return LocalStore.open(dir.resolve("store"), LocalStore.Options.defaults().withRootCompactRecords(50)).asStore();
    }
}
