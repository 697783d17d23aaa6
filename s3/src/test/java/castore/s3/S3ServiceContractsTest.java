package castore.s3;

import castore.service.BlobService;
import castore.service.BlobServiceContract;
import castore.service.DirectoryService;
import castore.service.DirectoryServiceContract;
import castore.service.RootService;
import castore.service.RootServiceContract;
import castore.service.Store;
import java.io.IOException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The shared service contracts against the S3 backend on a real S3-compatible server; each test gets a fresh prefix. */
class S3ServiceContractsTest {
    @RegisterExtension
    static final SharedS3Proxy S3 = new SharedS3Proxy();

    private Store store;

    @BeforeEach
    void open() throws IOException {
        store = S3.freshStore();
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
