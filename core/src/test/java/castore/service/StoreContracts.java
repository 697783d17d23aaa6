package castore.service;

import java.io.IOException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;

/**
 * All three service contracts against one backend: a backend's test extends this class and
 * opens a fresh, empty {@link Store} in {@link #openStore()}; it is closed after each test.
 */
public abstract class StoreContracts {
    private Store store;

    /** A fresh, empty store for one test. */
    protected abstract Store openStore() throws IOException;

    protected final Store store() {
        return store;
    }

    @BeforeEach
    void openFreshStore() throws IOException {
        store = openStore();
    }

    @AfterEach
    void closeStore() throws IOException {
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
