package castore.grpc;

import castore.service.RootService;
import castore.service.RootServiceContract;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/** The shared RootService contract, through the gRPC client, against a daemon over a local store (TCP). */
class GrpcRootServiceContractTest extends RootServiceContract {
    @TempDir
    Path dir;
    private ContractFixture fixture;
    private RootService roots;

    @BeforeEach
    void start() throws Exception {
        fixture = new ContractFixture(TestServer.Transport.TCP, dir);
        roots = fixture.client().roots();
    }

    @AfterEach
    void stop() throws Exception {
        fixture.close();
    }

    @Override
    protected RootService roots() {
        return roots;
    }
}
