package castore.grpc;

import io.grpc.BindableService;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/** A real gRPC server on loopback with whatever services a test gives it (lying ones, tvix-like ones). */
final class FakeServer implements AutoCloseable {
    private final Server server;

    private FakeServer(Server server) {
        this.server = server;
    }

    static FakeServer start(BindableService... services) throws IOException {
        var builder = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0), InsecureServerCredentials.create());
        for (BindableService s : services) {
            builder.addService(s);
        }
        return new FakeServer(builder.build().start());
    }

    String address() {
        return "grpc+http://127.0.0.1:" + ((InetSocketAddress) server.getListenSockets().getFirst()).getPort();
    }

    @Override
    public void close() throws InterruptedException {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
}
