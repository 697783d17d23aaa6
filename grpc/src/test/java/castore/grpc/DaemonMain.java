package castore.grpc;

import castore.grpc.server.CastoreServer;
import castore.grpc.server.Daemon;
import java.time.Duration;

/** Runs {@link Daemon} on a memory store in its own JVM, for {@link DaemonProcessTest}. */
public final class DaemonMain {
    private DaemonMain() {
    }

    public static void main(String[] args) throws Exception {
        Daemon.serve(TestServer.memoryStore(), new CastoreServer.Config(ListenAddress.parse(args[0]), false),
                Duration.ofSeconds(30), "memory://", System.err);
    }
}
