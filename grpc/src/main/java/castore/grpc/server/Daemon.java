package castore.grpc.server;

import castore.service.IdleCommitter;
import castore.service.Store;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Runs a server until the JVM is asked to stop (SIGTERM, SIGINT): it then stops accepting calls,
 * lets calls in flight finish (up to the grace period), closes the store and logs one line.
 * Owns the store: it is closed exactly once on every path. A writable daemon over a store whose
 * writes need a commit (the local store) commits them when uploads pause ({@link IdleCommitter}):
 * tvix clients put no roots, and a root put was the only commit before the store's close.
 */
public final class Daemon {
    public static final Duration DEFAULT_GRACE = Duration.ofSeconds(30);

    private Daemon() {
    }

    public static void serve(Store store, CastoreServer.Config config, Duration grace, String description, PrintStream log)
            throws IOException, InterruptedException {
        AtomicBoolean storeClosed = new AtomicBoolean();
        CastoreServer server;
        try {
            server = CastoreServer.start(store, config);
        } catch (IOException | RuntimeException e) {
            closeOnce(store, storeClosed, log);
            throw e;
        }
        IdleCommitter committer = config.readOnly() ? null : store.uncommittedWrites()
                .map(w -> new IdleCommitter(w, IdleCommitter.IDLE, IdleCommitter.LONGEST, line -> {
                    log.println("castore daemon: " + line);
                    log.flush();
                }))
                .orElse(null);
        CountDownLatch stopped = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            try {
                server.shutdown(grace);
                if (committer != null) {
                    committer.close(); // the store's close commits what is left
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                closeOnce(store, storeClosed, log);
                log.println("castore daemon: stopped");
                log.flush();
                stopped.countDown();
            }
        }, "castore-daemon-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        exposureWarning(server.address(), config.tlsCert() != null, config.readOnly()).ifPresent(log::println);
        log.println("castore daemon: serving " + description + " on " + server.address() + (config.readOnly() ? " (read-only)" : "")
                + (config.tlsCert() != null ? " with TLS" : ""));
        log.flush();
        server.awaitTermination();
        stopped.await();
    }

    /**
     * A warning for a TCP address other machines can reach (not loopback) served without TLS:
     * the store then travels in plain text, to anyone who connects (there is no client
     * authentication), and takes their writes unless read-only. Empty for loopback, a Unix socket
     * or TLS.
     */
    public static java.util.Optional<String> exposureWarning(castore.grpc.ListenAddress listening, boolean tls, boolean readOnly) {
        if (!(listening instanceof castore.grpc.ListenAddress.Tcp tcp) || tls) {
            return java.util.Optional.empty();
        }
        java.net.InetAddress address = tcp.socketAddress().getAddress();
        if (address != null && address.isLoopbackAddress()) {
            return java.util.Optional.empty();
        }
        return java.util.Optional.of("castore daemon: warning: " + tcp + " can be reached from other machines and is served "
                + "without TLS: anyone who connects reads the store in plain text" + (readOnly ? "" : " and can write to it")
                + "; use --tls-cert/--tls-key" + (readOnly ? "" : ", and --read-only for clients you do not trust")
                + ", or listen on 127.0.0.1 or a Unix socket (docs/grpc.md, \"Security notes\")");
    }

    private static void closeOnce(Store store, AtomicBoolean closed, PrintStream log) {
        if (closed.compareAndSet(false, true)) {
            try {
                store.close();
            } catch (IOException e) {
                log.println("castore daemon: closing the store failed: " + e.getMessage());
            }
        }
    }
}
