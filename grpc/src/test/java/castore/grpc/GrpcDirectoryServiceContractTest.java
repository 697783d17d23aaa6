package castore.grpc;

import castore.service.DirectoryService;
import castore.service.DirectoryServiceContract;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/** The shared DirectoryService contract, through the gRPC client, against a daemon over a local store (UNIX). */
class GrpcDirectoryServiceContractTest extends DirectoryServiceContract {
    @TempDir
    Path dir;
    private ContractFixture fixture;
    private DirectoryService directories;

    @BeforeEach
    void start() throws Exception {
        fixture = new ContractFixture(TestServer.Transport.UNIX, dir);
        directories = fixture.client().directories();
    }

    @AfterEach
    void stop() throws Exception {
        fixture.close();
    }

    @Override
    protected DirectoryService directories() {
        return directories;
    }
}
