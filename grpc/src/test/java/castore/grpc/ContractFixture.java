package castore.grpc;

import castore.service.Store;
import castore.store.local.LocalStore;
import java.io.IOException;
import java.nio.file.Path;

/** A fresh daemon over a fresh local store, and a gRPC client store for it, per contract test. */
final class ContractFixture implements AutoCloseable {
    private final TestServer server;

    ContractFixture(TestServer.Transport transport, Path dir) throws IOException {
        Store local = LocalStore.open(dir.resolve("store"), LocalStore.Options.defaults().withSync(false)).asStore();
        this.server = TestServer.start(transport, dir, local, false);
    }

    Store client() throws IOException {
        return server.client();
    }

    @Override
    public void close() throws Exception {
        server.close();
    }
}
