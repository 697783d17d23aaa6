package castore.grpc;

import io.grpc.netty.shaded.io.netty.util.ResourceLeakDetector;
import io.grpc.netty.shaded.io.netty.util.concurrent.ImmediateEventExecutor;
import java.util.logging.Level;
import java.util.logging.Logger;

/** Settings of gRPC's (shaded) Netty that castore's clients and daemon share; applied when either starts. */
public final class NettyDefaults {
    private static final Logger BOOTSTRAP = Logger.getLogger("io.grpc.netty.shaded.io.netty.bootstrap");
    /** The property Netty itself reads, under gRPC's shaded package: setting it keeps Netty's own choice. */
    static final String LEAK_DETECTION_PROPERTY = "io.grpc.netty.shaded.io.netty.leakDetection.level";

    private NettyDefaults() {
    }

    /**
     * Netty's leak detector samples one buffer allocation in 128 and records a stack trace for it
     * (1.1% of a daemon's CPU while serving a cold GiB: docs/performance.md, "Session 17"). Our
     * code hands no Netty buffers around, so it is off unless {@value #LEAK_DETECTION_PROPERTY}
     * asks for a level (e.g. {@code paranoid}, when working on the transport).
     */
    public static void apply() {
        if (System.getProperty(LEAK_DETECTION_PROPERTY) == null) {
            ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.DISABLED);
        }
        loadShutdownExecutor();
    }

    /**
     * Loads Netty's {@code ImmediateEventExecutor} before any of Netty's code is compiled. Netty
     * first uses it when an event loop group shuts down; loaded only then (the mount's gRPC
     * warm-up shuts its own group down as the mount's first workload starts), a new
     * EventExecutor class made the JIT throw away a dozen channel-pipeline methods it had
     * compiled assuming none, which the workload then ran interpreted and compiled again
     * (docs/performance.md, Remote mount, "Session 43").
     */
    static void loadShutdownExecutor() {
        ImmediateEventExecutor.INSTANCE.inEventLoop();
    }

    /**
     * gRPC sets SO_KEEPALIVE on every connection; on Unix domain sockets Netty logs a warning for
     * each one that the option does not apply. Only that logger is quieted (kept referenced so the
     * setting sticks).
     */
    public static void quietUnixSocketOptionWarnings() {
        BOOTSTRAP.setLevel(Level.SEVERE);
    }
}
