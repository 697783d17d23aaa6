package castore.grpc;

import castore.grpc.server.CastoreServer;
import castore.grpc.server.Daemon;
import java.time.Duration;

/** Runs {@link Daemon} on a memory store in its own JVM, for {@link DaemonProcessTest}. */
public final class DaemonMain {
    private DaemonMain() {
    }

    /** A blob the daemon holds from the start, large enough to stay in flight for a while. */
    static final byte[] BLOB = TestData.random(71, 8 << 20);

    public static void main(String[] args) throws Exception {
        var store = TestServer.memoryStore();
        TestData.put(store.blobs(), BLOB);
        Daemon.serve(store, new CastoreServer.Config(ListenAddress.parse(args[0]), false),
                Duration.ofSeconds(30), "memory://", System.err);
    }
}
