package castore.store.local;

import castore.service.DirectoryServiceContract;
import castore.service.DirectoryService;
import castore.service.Store;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

class LocalDirectoryServiceContractTest extends DirectoryServiceContract {
    @TempDir
    Path dir;
    private Store store;

    @BeforeEach
    void open() throws IOException {
        // Small root journal so the contract also exercises compaction into the sorted base.
        store = LocalStore.open(dir.resolve("store"), LocalStore.Options.defaults().withRootCompactRecords(50)).asStore();
    }

    @AfterEach
    void close() throws IOException {
        store.close();
    }

    @Override
    protected DirectoryService directories() {
        return store.directories();
    }
}
