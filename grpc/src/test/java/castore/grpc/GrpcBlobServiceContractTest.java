package castore.grpc;

import castore.service.BlobService;
import castore.service.BlobServiceContract;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/** The shared BlobService contract, through the gRPC client, against a daemon over a local store (TCP). */
class GrpcBlobServiceContractTest extends BlobServiceContract {
    @TempDir
    Path dir;
    private ContractFixture fixture;
    private BlobService blobs;

    @BeforeEach
    void start() throws Exception {
        fixture = new ContractFixture(TestServer.Transport.TCP, dir);
        blobs = fixture.client().blobs();
    }

    @AfterEach
    void stop() throws Exception {
        fixture.close();
    }

    @Override
    protected BlobService blobs() {
        return blobs;
    }
}
