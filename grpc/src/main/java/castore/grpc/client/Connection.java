package castore.grpc.client;

import castore.grpc.NettyDefaults;
import castore.grpc.proto.ChunkedBlobServiceGrpc;
import castore.grpc.proto.DirectoryPartServiceGrpc;
import castore.grpc.proto.HasChunksRequest;
import castore.grpc.proto.PartLimitRequest;
import castore.model.InvalidDataException;
import castore.service.StoreOptions;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.ConnectivityState;
import io.grpc.Context;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.stub.ClientCalls;
import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One channel to a castore or tvix daemon, shared by the three remote services. Every call waits
 * for the connection up to the store timeout (then fails), and while calls wait, a failed
 * connection is retried every quarter second instead of gRPC's exponential backoff (up to two
 * minutes): a daemon that comes back is used again at once, without re-creating the client.
 */
final class Connection implements AutoCloseable {
    private static final long RECONNECT_CHECK_MILLIS = 250;

    final String address;
    final Duration timeout;
    final Channel channel;
    final ScheduledExecutorService scheduler;
    private final ManagedChannel managed;
    private final AtomicInteger active = new AtomicInteger();
    private volatile Boolean chunkedUploads;
    /** The server's DirectoryPartService part limit; 0 if it has none; null until probed. */
    private volatile Long closurePartLimit;

    private Connection(String address, ManagedChannel managed, Duration timeout) {
        this.address = address;
        this.managed = managed;
        this.timeout = timeout;
        this.channel = ClientInterceptors.intercept(managed, new ActiveCalls());
        this.scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "castore-grpc-watchdog " + address);
            t.setDaemon(true);
            return t;
        });
        scheduler.scheduleWithFixedDelay(this::reconnectIfWaiting, RECONNECT_CHECK_MILLIS, RECONNECT_CHECK_MILLIS, TimeUnit.MILLISECONDS);
    }

    /** {@code grpc+http://host:port}, {@code grpc+https://host:port[?ca=/path/ca.pem]}, {@code grpc+unix:///path}. */
    static Connection open(URI uri, StoreOptions options) throws IOException {
        NettyDefaults.apply();
        String scheme = uri.getScheme();
        Map<String, String> query = query(uri);
        // Only grpc+https has a parameter (ca); an unknown one (a typo) is refused, not ignored.
        for (String key : query.keySet()) {
            if (!(scheme.equals("grpc+https") && key.equals("ca"))) {
                throw new InvalidDataException("invalid address '" + uri + "': unknown parameter '" + key
                        + "' (known: " + (scheme.equals("grpc+https") ? "ca" : "none") + ")");
            }
        }
        ManagedChannelBuilder<?> builder = switch (scheme) {
            case "grpc+unix" -> {
                NettyDefaults.quietUnixSocketOptionWarnings();
                String path = uri.getPath();
                // A socket's path never ends in '/': "grpc+unix://" (parsed as path "/") names no socket.
                if (path == null || path.isEmpty() || path.endsWith("/") || uri.getHost() != null) {
                    throw new InvalidDataException("invalid address '" + uri + "': expected grpc+unix:///absolute/path");
                }
                yield Grpc.newChannelBuilder("unix://" + path, InsecureChannelCredentials.create());
            }
            case "grpc+http", "grpc+https" -> {
                if (uri.getHost() == null) {
                    throw new InvalidDataException("invalid address '" + uri + "': expected " + scheme + "://HOST:PORT");
                }
                int port = uri.getPort() < 0 ? 8000 : uri.getPort();
                if (port < 1 || port > 65535) {
                    // Left to gRPC, its resolver throws on a thread of its own and the call never ends.
                    throw new InvalidDataException("invalid address '" + uri + "': port " + port + " is not 1-65535");
                }
                ChannelCredentials credentials = scheme.equals("grpc+http") ? InsecureChannelCredentials.create() : tls(uri, query);
                String host = uri.getHost().startsWith("[") ? uri.getHost().substring(1, uri.getHost().length() - 1) : uri.getHost();
                yield Grpc.newChannelBuilderForAddress(host, port, credentials);
            }
            default -> throw new InvalidDataException("unsupported scheme '" + scheme + "'");
        };
        return open(uri.toString(), builder, options.timeout());
    }

    private static Connection open(String address, ManagedChannelBuilder<?> builder, Duration timeout) {
        ManagedChannel channel = builder
                .maxInboundMessageSize(castore.grpc.MessageLimit.BYTES)
                .keepAliveTime(10, TimeUnit.SECONDS)
                .keepAliveTimeout(Math.max(1, timeout.toMillis()), TimeUnit.MILLISECONDS)
                .build();
        return new Connection(address, channel, timeout);
    }

    /**
     * A connection to 127.0.0.1:{@code port} whose socket and callbacks run on threads the caller
     * owns ({@code group}'s, of {@code channelType}'s transport, and {@code executor}'s), none of
     * the process's shared pools: for {@link GrpcWarmUp}, whose threads must not outlive it.
     */
    static Connection openIsolated(int port, EventLoopGroup group, Class<? extends io.grpc.netty.shaded.io.netty.channel.Channel> channelType,
                                   java.util.concurrent.Executor executor, Duration timeout) {
        NettyDefaults.apply();
        // A socket address, not a host name: a name goes through gRPC's DNS resolver, which runs on
        // the process's shared executor (and may start a thread there from this nice-19 one).
        var builder = NettyChannelBuilder.forAddress(new InetSocketAddress("127.0.0.1", port), InsecureChannelCredentials.create())
                .eventLoopGroup(group).channelType(channelType).executor(executor).offloadExecutor(executor);
        return open("grpc+http://127.0.0.1:" + port, builder, timeout);
    }

    private static ChannelCredentials tls(URI uri, Map<String, String> query) throws IOException {
        String ca = query.get("ca");
        if (ca == null) {
            return TlsChannelCredentials.create();
        }
        // Parsed here as the channel will: its own error came from building the channel, as an
        // internal error that named neither the address nor the file.
        if (!new File(ca).isFile() || !new File(ca).canRead()) {
            throw new InvalidDataException("invalid address '" + uri + "': cannot use ca=" + ca + ": not a readable file");
        }
        try {
            io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts.forClient().trustManager(new File(ca)).build();
        } catch (IllegalArgumentException | javax.net.ssl.SSLException e) {
            throw new InvalidDataException("invalid address '" + uri + "': cannot use ca=" + ca + ": " + e.getMessage());
        }
        return TlsChannelCredentials.newBuilder().trustManager(new File(ca)).build();
    }

    private static Map<String, String> query(URI uri) {
        Map<String, String> result = new HashMap<>();
        if (uri.getRawQuery() != null) {
            for (String pair : uri.getRawQuery().split("&")) {
                int eq = pair.indexOf('=');
                String key = eq < 0 ? pair : pair.substring(0, eq);
                String value = eq < 0 ? "" : URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
                result.put(URLDecoder.decode(key, StandardCharsets.UTF_8), value);
            }
        }
        return result;
    }

    /** Options for a call that must answer within the timeout. */
    CallOptions unaryOptions() {
        return CallOptions.DEFAULT.withWaitForReady().withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** Options for a call bounded by {@code deadline} rather than the plain timeout. */
    CallOptions options(Duration deadline) {
        return CallOptions.DEFAULT.withWaitForReady().withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** Options for streams whose length is unknown; they are guarded by an idle timeout instead. */
    CallOptions streamOptions() {
        return CallOptions.DEFAULT.withWaitForReady();
    }

    /**
     * Whether the server is a castore daemon, with castore's ChunkedBlobService (a tvix server
     * answers UNIMPLEMENTED to the probe, an empty HasChunks); probed once per connection.
     */
    boolean castoreServer() throws IOException {
        Boolean known = chunkedUploads;
        if (known != null) {
            return known;
        }
        try {
            ClientCalls.blockingUnaryCall(channel, ChunkedBlobServiceGrpc.getHasChunksMethod(), unaryOptions(),
                    HasChunksRequest.getDefaultInstance());
            chunkedUploads = true;
            return true;
        } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() == Status.Code.UNIMPLEMENTED) {
                chunkedUploads = false;
                return false;
            }
            throw Failures.of(e, this, "write to the store (asking whether it takes chunked uploads)");
        }
    }

    /**
     * The most bytes of Directories the server takes in one part of a closure
     * (DirectoryPartService.PartLimit), or 0 if it takes closures whole only (a tvix server, a
     * castore daemon before session 38); probed once per connection.
     */
    long closurePartLimit() throws IOException {
        Long known = closurePartLimit;
        if (known != null) {
            return known;
        }
        try {
            var response = ClientCalls.blockingUnaryCall(channel, DirectoryPartServiceGrpc.getPartLimitMethod(), unaryOptions(),
                    PartLimitRequest.getDefaultInstance());
            known = response.getMaxBytes();
        } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() != Status.Code.UNIMPLEMENTED) {
                throw Failures.of(e, this, "put directories (asking how much of a closure it takes at once)");
            }
            known = 0L;
        }
        closurePartLimit = known;
        return known;
    }

    /**
     * What to say of a server that gave nothing within the timeout, {@code silence} describing
     * that ("sent nothing for"): when no connection to it is up, that it could not be reached,
     * which is what a user must fix (a daemon not running, a wrong port or socket path).
     */
    String unanswered(String silence) {
        ConnectivityState state = managed.getState(false);
        if (state == ConnectivityState.CONNECTING || state == ConnectivityState.TRANSIENT_FAILURE) {
            // gRPC tells a failed TLS handshake from a refused connection by nothing ("io exception"), so the
            // hint for an https address names the certificate too: a self-signed one needs ?ca=.
            String tls = address.startsWith("grpc+https:") ? ", with a certificate this client trusts (?ca=FILE)" : "";
            return address + " could not be reached within " + timeout.toMillis() + " ms (no connection; is a castore daemon"
                    + " serving at that address" + tls + "?)";
        }
        return address + " " + silence + " " + timeout.toMillis() + " ms";
    }

    private void reconnectIfWaiting() {
        if (active.get() > 0 && managed.getState(false) == ConnectivityState.TRANSIENT_FAILURE) {
            managed.resetConnectBackoff();
        }
    }

    @Override
    public void close() {
        scheduler.shutdownNow();
        managed.shutdownNow();
        try {
            managed.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Marks a context this client made for its own calls (see {@link #ownContext}). */
    private static final Context.Key<Boolean> OWN_CONTEXT = Context.key("castore-client");

    /**
     * A cancellable context for calls of this client, detached from the caller's: calls made in
     * it stay in it (the {@link ActiveCalls} interceptor moves every other call to the root).
     */
    static Context.CancellableContext ownContext() {
        return Context.ROOT.withValue(OWN_CONTEXT, Boolean.TRUE).withCancellation();
    }

    /**
     * Counts calls in flight, so reconnection is hurried only while someone waits; and makes
     * every call outside the caller's gRPC context. In a daemon that serves a remote store (a
     * proxy), the context is that of the server call being answered: a fetch it starts (a
     * read-ahead, a single-flight load other readers wait for) was cancelled with that call, and
     * the others got CANCELLED. This client's own timeouts bound every call instead.
     */
    private final class ActiveCalls implements ClientInterceptor {
        @Override
        public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
            ClientCall<Q, R> call;
            if (OWN_CONTEXT.get() != null) {
                call = next.newCall(method, options); // a context of this client's (an idle timeout's)
            } else {
                Context previous = Context.ROOT.attach();
                try {
                    call = next.newCall(method, options);
                } finally {
                    Context.ROOT.detach(previous);
                }
            }
            return new ForwardingClientCall.SimpleForwardingClientCall<>(call) {
                @Override
                public void start(Listener<R> listener, Metadata headers) {
                    active.incrementAndGet();
                    reconnectIfWaiting();
                    super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
                        @Override
                        public void onClose(Status status, Metadata trailers) {
                            active.decrementAndGet();
                            super.onClose(status, trailers);
                        }
                    }, headers);
                }
            };
        }
    }
}
