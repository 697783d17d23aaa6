package castore.s3;

import castore.service.DirectoryServiceContract;
import castore.service.DirectoryService;
import castore.service.Store;
import java.io.IOException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The shared DirectoryService contract against the S3 backend on a real S3-compatible server. */
class S3DirectoryServiceContractTest extends DirectoryServiceContract {
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

    @Override
    protected DirectoryService directories() {
        return store.directories();
    }
}
