package castore.grpc;

import castore.grpc.server.CastoreServer;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** A real daemon on loopback or a Unix socket over a backing store, and a client store for it. */
final class TestServer implements AutoCloseable {
    /** For calls expected to succeed: room for a cold JVM's first call (and TLS handshake) on a busy machine. */
    static final StoreOptions CLIENT_OPTIONS = new StoreOptions(false, Duration.ofSeconds(30), Map.of());
    /** For calls expected to fail or time out, and tests of the timeout itself. */
    static final StoreOptions SHORT_TIMEOUT = new StoreOptions(false, Duration.ofSeconds(2), Map.of());

    enum Transport { TCP, UNIX }

    final Store backing;
    final CastoreServer server;
    private Store client;
    private ManagedChannel raw;

    private TestServer(Store backing, CastoreServer server) {
        this.backing = backing;
        this.server = server;
    }

    static Store memoryStore() {
        return new Store(new MemoryBlobService(), new MemoryDirectoryService(), new MemoryRootService());
    }

    static TestServer start(Transport transport, Path dir, Store backing, boolean readOnly) throws IOException {
        return start(transport, dir, backing, readOnly, CastoreServer.MAX_CLOSURE_BYTES);
    }

    /** With the daemon's limit on what it holds of one closure Put or part ({@code castore daemon --max-closure}). */
    static TestServer start(Transport transport, Path dir, Store backing, boolean readOnly, long maxClosureBytes) throws IOException {
        ListenAddress address = transport == Transport.TCP
                ? new ListenAddress.Tcp("127.0.0.1", 0)
                : new ListenAddress.Unix(dir.resolve("castore.sock"));
        var config = new CastoreServer.Config(address, readOnly).withMaxClosureBytes(maxClosureBytes);
        return new TestServer(backing, CastoreServer.start(backing, config));
    }

    static TestServer start(Transport transport, Path dir) throws IOException {
        return start(transport, dir, memoryStore(), false);
    }

    String clientAddress() {
        return switch (server.address()) {
            case ListenAddress.Tcp tcp -> "grpc+http://" + tcp;
            case ListenAddress.Unix unix -> "grpc+unix://" + unix.path();
        };
    }

    /** The client store (opened once, closed with this). */
    Store client() throws IOException {
        if (client == null) {
            client = Stores.open(clientAddress(), CLIENT_OPTIONS);
        }
        return client;
    }

    /** A plain channel for speaking the protocol directly, as a foreign client would. */
    ManagedChannel raw() {
        if (raw == null) {
            String target = switch (server.address()) {
                case ListenAddress.Tcp tcp -> tcp.toString();
                case ListenAddress.Unix unix -> "unix://" + unix.path();
            };
            raw = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
        }
        return raw;
    }

    @Override
    public void close() throws Exception {
        if (raw != null) {
            raw.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        if (client != null) {
            client.close();
        }
        server.shutdown(Duration.ofSeconds(5));
        backing.close();
    }
}
