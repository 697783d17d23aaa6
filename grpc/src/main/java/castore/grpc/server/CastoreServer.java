package castore.grpc.server;

import castore.grpc.ListenAddress;
import castore.grpc.NettyDefaults;
import castore.io.Libc;
import castore.model.InvalidDataException;
import castore.service.Store;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.MultiThreadIoEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.ServerChannel;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollIoHandler;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;

/**
 * Serves a {@link Store} over gRPC: tvix's BlobService and DirectoryService, and castore's
 * RootService and ChunkedBlobService. Read-only mode refuses every write with PERMISSION_DENIED.
 */
public final class CastoreServer implements AutoCloseable {
    /**
     * Default for the largest Directory closure a Put may send in one stream (it is validated
     * whole before storing), and for a part of one (DirectoryPartService).
     */
    public static final long MAX_CLOSURE_BYTES = 512L << 20;

    /**
     * How to serve: where, whether writes are refused, TLS (both files or neither), and the most
     * bytes of encoded Directories held of one closure Put or part (the daemon's memory bound).
     */
    public record Config(ListenAddress address, boolean readOnly, Path tlsCert, Path tlsKey, long maxClosureBytes) {
        public Config {
            if (maxClosureBytes <= 0) {
                throw new IllegalArgumentException("maxClosureBytes must be positive");
            }
            if ((tlsCert == null) != (tlsKey == null)) {
                throw new IllegalArgumentException("TLS needs both a certificate and a key");
            }
            if (tlsCert != null) {
                // Parsed here as the server will: gRPC's own error, from deep in the server's
                // start, names neither file and passes for an internal error.
                try {
                    GrpcSslContexts.forServer(tlsCert.toFile(), tlsKey.toFile()).build();
                } catch (IllegalArgumentException | SSLException e) {
                    throw new InvalidDataException("invalid TLS certificate or key (certificate " + tlsCert + ", key " + tlsKey
                            + "): " + e.getMessage());
                }
            }
        }

        public Config(ListenAddress address, boolean readOnly, Path tlsCert, Path tlsKey) {
            this(address, readOnly, tlsCert, tlsKey, MAX_CLOSURE_BYTES);
        }

        public Config(ListenAddress address, boolean readOnly) {
            this(address, readOnly, null, null);
        }

        public Config withMaxClosureBytes(long bytes) {
            return new Config(address, readOnly, tlsCert, tlsKey, bytes);
        }
    }

    private final Server server;
    private final ListenAddress bound;
    private final EventLoopGroup unixEventLoop;
    private final ExecutorService executor;
    private final Object socketKey;

    private CastoreServer(Server server, ListenAddress bound, EventLoopGroup unixEventLoop, ExecutorService executor, Object socketKey) {
        this.server = server;
        this.bound = bound;
        this.unixEventLoop = unixEventLoop;
        this.executor = executor;
        this.socketKey = socketKey;
    }

    public static CastoreServer start(Store store, Config config) throws IOException {
        ServerCredentials credentials = config.tlsCert() == null
                ? InsecureServerCredentials.create()
                : TlsServerCredentials.create(config.tlsCert().toFile(), config.tlsKey().toFile());
        NettyDefaults.apply();
        // Handlers block on store I/O; virtual threads make that cheap.
        ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
        EventLoopGroup unixEventLoop = null;
        NettyServerBuilder builder;
        Path staging = null;
        int stagingFd = -1;
        try {
            switch (config.address()) {
                case ListenAddress.Tcp tcp -> {
                    InetSocketAddress socketAddress = tcp.socketAddress();
                    if (socketAddress.isUnresolved()) {
                        // Netty's bind would fail with an exception that has no message.
                        throw new IOException("cannot resolve host '" + tcp.host() + "'");
                    }
                    builder = NettyServerBuilder.forAddress(socketAddress, credentials);
                }
                case ListenAddress.Unix unix -> {
                    NettyDefaults.quietUnixSocketOptionWarnings();
                    prepareSocketPath(unix.path());
                    // Bind in a private directory, restrict the socket, then move it into place:
                    // nobody can connect while it is still open to all.
                    staging = Files.createTempDirectory(unix.path().toAbsolutePath().getParent(), ".castore-sock",
                            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
                    String bindPath = staging.resolve("s").toString();
                    if (socketPathBytes(bindPath) > MAX_SOCKET_PATH && Libc.available()) {
                        // The private directory's name is longer than the socket's: a path that
                        // fits the socket address may not fit with it. Bind through the directory's
                        // descriptor instead (Linux resolves /proc/self/fd/N to the directory).
                        stagingFd = Libc.open(staging, Libc.O_RDONLY, 0);
                        bindPath = "/proc/self/fd/" + stagingFd + "/s";
                    }
                    unixEventLoop = new MultiThreadIoEventLoopGroup(2, EpollIoHandler.newFactory());
                    builder = NettyServerBuilder.forAddress(new DomainSocketAddress(bindPath), credentials)
                            .channelType(EpollServerDomainSocketChannel.class)
                            .bossEventLoopGroup(unixEventLoop)
                            .workerEventLoopGroup(unixEventLoop);
                }
            }
            Server server = configure(builder.executor(executor), store, config.readOnly(), config.maxClosureBytes()).build().start();
            if (stagingFd >= 0) {
                Libc.close(stagingFd); // bound
                stagingFd = -1;
            }
            ListenAddress bound = config.address();
            Object socketKey = null;
            if (bound instanceof ListenAddress.Tcp tcp && server.getListenSockets().getFirst() instanceof InetSocketAddress actual) {
                bound = new ListenAddress.Tcp(tcp.host(), actual.getPort());
            } else if (bound instanceof ListenAddress.Unix unix) {
                Path socket = staging.resolve("s");
                Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
                Files.move(socket, unix.path(), StandardCopyOption.ATOMIC_MOVE);
                socketKey = fileKey(unix.path());
                Files.delete(staging);
            }
            return new CastoreServer(server, bound, unixEventLoop, executor, socketKey);
        } catch (IOException | RuntimeException e) {
            if (stagingFd >= 0) {
                Libc.close(stagingFd);
            }
            if (unixEventLoop != null) {
                unixEventLoop.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            }
            executor.shutdownNow();
            if (staging != null) {
                Files.deleteIfExists(staging.resolve("s"));
                Files.deleteIfExists(staging);
            }
            if (e instanceof IOException io) {
                throw new IOException("cannot listen on " + config.address() + ": " + describe(io), io);
            }
            throw e;
        }
    }

    private static String describe(IOException e) {
        Throwable t = e;
        while (t.getCause() != null && t.getMessage() != null && t.getMessage().startsWith("Failed to bind")) {
            t = t.getCause();
        }
        return t.getMessage();
    }

    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;

    /** The longest path a Unix socket address holds: sun_path is 108 bytes, with the terminating NUL. */
    private static final int MAX_SOCKET_PATH = 107;

    private static int socketPathBytes(String path) {
        return path.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
    }

    /**
     * A path too long for a socket address is refused by name; a stale socket (nobody listening)
     * is removed; a live one or any other file is an error.
     */
    private static void prepareSocketPath(Path path) throws IOException {
        int length = socketPathBytes(path.toString());
        if (length > MAX_SOCKET_PATH) {
            throw new IOException(path + " is " + length + " bytes long; a Unix socket path can have at most " + MAX_SOCKET_PATH);
        }
        if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            Path parent = path.toAbsolutePath().getParent();
            if (!Files.isDirectory(parent)) {
                throw new IOException("no such directory: " + parent);
            }
            return;
        }
        // "Other" would take in FIFOs and device nodes too, and a connect to them fails as to a
        // stale socket: only the file type says it is a socket.
        int mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        if ((mode & S_IFMT) != S_IFSOCK) {
            throw new IOException(path + " exists and is not a socket");
        }
        try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            probe.connect(UnixDomainSocketAddress.of(path));
            throw new IOException(path + " is in use by another server");
        } catch (java.net.ConnectException stale) {
            Files.delete(path);
        }
    }

    private static Object fileKey(Path path) throws IOException {
        return Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
    }

    /** The daemon's services and limits, on {@code builder}. */
    private static NettyServerBuilder configure(NettyServerBuilder builder, Store store, boolean readOnly, long maxClosureBytes) {
        ClosureBudget closures = ClosureBudget.ofHeap(); // what all closure puts in flight may hold at once
        return builder.maxInboundMessageSize(castore.grpc.MessageLimit.BYTES)
                .permitKeepAliveTime(5, TimeUnit.SECONDS)
                .permitKeepAliveWithoutCalls(true)
                .keepAliveTime(30, TimeUnit.SECONDS)
                .keepAliveTimeout(10, TimeUnit.SECONDS)
                .addService(new BlobServiceImpl(store.blobs(), readOnly))
                .addService(new ChunkedBlobServiceImpl(store.blobs(), readOnly))
                .addService(new DirectoryServiceImpl(store.directories(), readOnly, maxClosureBytes, closures))
                .addService(new DirectoryPartServiceImpl(store.directories(), readOnly, maxClosureBytes, closures))
                .addService(new RootServiceImpl(store.roots(), readOnly));
    }

    /**
     * A read-only server of {@code store} on 127.0.0.1 (a port of its own) whose sockets and calls
     * run on threads the caller owns: {@code group}'s (of {@code channelType}'s transport) and
     * {@code executor}'s (shut down with the server), none of the process's shared pools. For a warm-up of the client
     * (castore.grpc.client.GrpcWarmUp), whose threads must not outlive it.
     */
    public static CastoreServer startIsolated(Store store, EventLoopGroup group, Class<? extends ServerChannel> channelType,
                                              ExecutorService executor) throws IOException {
        NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0), InsecureServerCredentials.create())
                .bossEventLoopGroup(group).workerEventLoopGroup(group).channelType(channelType).executor(executor);
        Server server = configure(builder, store, true, MAX_CLOSURE_BYTES).build().start();
        int port = ((InetSocketAddress) server.getListenSockets().getFirst()).getPort();
        return new CastoreServer(server, ListenAddress.parse("127.0.0.1:" + port), null, executor, null);
    }

    /** The address actually bound (for TCP port 0: the port chosen). */
    public ListenAddress address() {
        return bound;
    }

    /**
     * Stops accepting calls and lets calls in flight finish for up to {@code grace}, then cancels
     * the rest. Removes the Unix socket file.
     */
    public void shutdown(Duration grace) throws InterruptedException {
        server.shutdown();
        try {
            if (!server.awaitTermination(grace.toMillis(), TimeUnit.MILLISECONDS)) {
                server.shutdownNow();
                server.awaitTermination(5, TimeUnit.SECONDS);
            }
        } finally {
            executor.shutdownNow();
            if (unixEventLoop != null) {
                unixEventLoop.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            }
            removeSocket();
        }
    }

    private void removeSocket() {
        if (bound instanceof ListenAddress.Unix unix) {
            try {
                // Only our socket: another daemon may have taken the path over since.
                if (socketKey != null && socketKey.equals(fileKey(unix.path()))) {
                    Files.delete(unix.path());
                }
            } catch (IOException ignored) {
                // already gone
            }
        }
    }

    /** Blocks until the server has stopped. */
    public void awaitTermination() throws InterruptedException {
        server.awaitTermination();
    }

    public boolean isTerminated() {
        return server.isTerminated();
    }

    /** Stops with a 30 s grace period for calls in flight. */
    @Override
    public void close() {
        try {
            shutdown(Duration.ofSeconds(30));
        } catch (InterruptedException e) {
            server.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }
}
