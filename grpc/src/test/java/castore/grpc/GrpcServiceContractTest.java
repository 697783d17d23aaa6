package castore.grpc;

import castore.service.Store;
import castore.service.StoreContracts;
import castore.store.local.LocalStore;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.io.TempDir;

/**
 * The core service contracts through the gRPC client: each test on a fresh daemon, over a local
 * store on loopback TCP and over a memory store on a Unix socket.
 */
class GrpcServiceContractTest {

    /** The client store of a fresh daemon; closing it stops the daemon and closes its store. */
    static Store remote(TestServer.Transport transport, Path dir, Store backing) throws IOException {
        TestServer server = TestServer.start(transport, dir, backing, false);
        Store client = server.client();
        return new Store(client.blobs(), client.directories(), client.roots(), List.of(server));
    }

    @Nested
    class OverLocalStoreOnTcp extends StoreContracts {
        @TempDir
        Path dir;

        @Override
        protected Store openStore() throws IOException {
            Store local = LocalStore.open(dir.resolve("store"), LocalStore.Options.defaults().withSync(false)).asStore();
            return remote(TestServer.Transport.TCP, dir, local);
        }
    }

    @Nested
    class OverMemoryStoreOnUnixSocket extends StoreContracts {
        @TempDir
        Path dir;

        @Override
        protected Store openStore() throws IOException {
            return remote(TestServer.Transport.UNIX, dir, TestServer.memoryStore());
        }
    }
}
