package castore.grpc;

import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * gRPC sets SO_KEEPALIVE on every connection; on Unix domain sockets Netty logs a warning for
 * each one that the option does not apply. Only that logger is quieted (kept referenced so the
 * setting sticks).
 */
public final class NettyNoise {
    private static final Logger BOOTSTRAP = Logger.getLogger("io.grpc.netty.shaded.io.netty.bootstrap");

    private NettyNoise() {
    }

    public static void quietUnixSocketOptionWarnings() {
        BOOTSTRAP.setLevel(Level.SEVERE);
    }
}
