package castore.grpc;

import castore.grpc.server.CastoreServer;
import castore.grpc.server.Daemon;
import java.time.Duration;

/** Runs {@link Daemon} on a memory (or local) store in its own JVM, for {@link DaemonProcessTest}. */
public final class DaemonMain {
    private DaemonMain() {
    }

    /** A blob the daemon holds from the start, large enough to stay in flight for a while. */
    static final byte[] BLOB = TestData.random(71, 8 << 20);

    /** Arguments: the listen address, and optionally a local store directory to serve instead of memory. */
    public static void main(String[] args) throws Exception {
        var store = args.length > 1
                ? castore.store.local.LocalStore.open(java.nio.file.Path.of(args[1]), castore.store.local.LocalStore.Options.defaults().withSync(false)).asStore()
                : TestServer.memoryStore();
        TestData.put(store.blobs(), BLOB);
        Daemon.serve(store, new CastoreServer.Config(ListenAddress.parse(args[0]), false),
                Duration.ofSeconds(30), args.length > 1 ? "local:///" + args[1] : "memory://", System.err);
    }
}
