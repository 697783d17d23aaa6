package castore.s3;

import castore.service.Store;
import castore.service.StoreContracts;
import java.io.IOException;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The shared service contracts against the S3 backend on a real S3-compatible server; each test gets a fresh prefix. */
class S3ServiceContractsTest extends StoreContracts {
    @RegisterExtension
    static final SharedS3Proxy S3 = new SharedS3Proxy();

    @Override
    protected Store openStore() throws IOException {
        return S3.freshStore();
    }
}
