package castore.store.local;

import castore.service.BlobService;
import castore.service.BlobServiceContract;
import castore.service.DirectoryService;
import castore.service.DirectoryServiceContract;
import castore.service.RootService;
import castore.service.RootServiceContract;
import castore.service.Store;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.io.TempDir;

/** The core service contracts, each test on a fresh local store. */
class LocalServiceContractTest {
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

    @Nested
    class Blobs extends BlobServiceContract {
        @Override
        protected BlobService blobs() {
            return store.blobs();
        }
    }

    @Nested
    class Directories extends DirectoryServiceContract {
        @Override
        protected DirectoryService directories() {
            return store.directories();
        }
    }

    @Nested
    class Roots extends RootServiceContract {
        @Override
        protected RootService roots() {
            return store.roots();
        }
    }
}
