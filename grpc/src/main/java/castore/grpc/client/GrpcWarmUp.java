package castore.grpc.client;

import castore.grpc.server.CastoreServer;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.FileNode;
import castore.model.Name;
import castore.service.BackendWarmUp;
import castore.service.ChunkMeta;
import castore.service.Store;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import io.grpc.netty.shaded.io.netty.channel.Channel;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.MultiThreadIoEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.ServerChannel;
import io.grpc.netty.shaded.io.netty.channel.epoll.Epoll;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollIoHandler;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.nio.NioIoHandler;
import io.grpc.netty.shaded.io.netty.channel.socket.nio.NioServerSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.socket.nio.NioSocketChannel;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

/**
 * Runs the gRPC client's per-call path (a Directory get, a blob's Stat, a small blob's Read, a
 * root's get: what a walk and a read of small files over a daemon make by the thousand) against
 * a server of its own on 127.0.0.1 over an in-memory store, for a mount's idle time. A fresh
 * mount otherwise runs gRPC's, Netty's and protobuf's per-call code in the interpreter and
 * compiles it as its first walk goes: a cold `find` over 3,217 directories took 1.7-2.0 s of
 * wall and 1.2-1.4 s of the mount's CPU in a JVM that had walked another tree first, against
 * 2.4-3.2 s and 1.9-2.4 s in a fresh one (docs/performance.md, Remote mount, "Session 28").
 *
 * <p>The real daemon is never contacted. Every thread the warm-up needs is its own and ends with
 * it (one event loop for both ends, two executors): a thread started by the warm-up's low-priority
 * thread inherits its nice value, so none may join a pool the mount keeps (gRPC's shared event
 * loops and executor, the virtual-thread scheduler).
 */
public final class GrpcWarmUp implements BackendWarmUp, AutoCloseable {
    /** Calls in all: past C1's threshold (about 200 calls) for the methods every call runs, and the per-method ones. */
    static final int CALLS = 800;
    private static final int DIRECTORIES = 24;
    private static final int BLOBS = 16;
    private static final String ROOT = "warm-up";
    private static final Duration TIMEOUT = Duration.ofSeconds(10);
    /** Calls the last warm-up made. */
    private volatile int callsMade;

    int callsMade() {
        return callsMade;
    }

    @Override
    public void warmUp(BooleanSupplier stop) throws Exception {
        callsMade = 0;
        ThreadFactory threads = named("castore-grpc-warm-up");
        boolean epoll = Epoll.isAvailable();
        // The transport the real client uses: epoll where Netty has it, as grpc-netty chooses.
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, threads, epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory());
        Class<? extends ServerChannel> serverChannel = epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
        Class<? extends Channel> clientChannel = epoll ? EpollSocketChannel.class : NioSocketChannel.class;
        ExecutorService serverCalls = Executors.newFixedThreadPool(2, threads);
        ExecutorService clientCallbacks = Executors.newFixedThreadPool(1, threads);
        try (Store served = new Store(new MemoryBlobService(), new MemoryDirectoryService(), new MemoryRootService())) {
            Synthetic data = fill(served);
            try (CastoreServer server = CastoreServer.startIsolated(served, group, serverChannel, serverCalls);
                    Connection connection = Connection.openIsolated(((castore.grpc.ListenAddress.Tcp) server.address()).port(), group,
                            clientChannel, clientCallbacks, TIMEOUT)) {
                calls(connection, data, stop);
            }
        } finally {
            clientCallbacks.shutdownNow();
            serverCalls.shutdownNow();
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(5, TimeUnit.SECONDS);
        }
    }

    private record Synthetic(List<B3Digest> directories, List<ChunkMeta> blobs) {
    }

    /** Small blobs, and directories listing them, each in the one before (as a tree's are). */
    private static Synthetic fill(Store store) throws IOException {
        Random random = new Random(CALLS);
        List<ChunkMeta> blobs = new ArrayList<>();
        for (int i = 0; i < BLOBS; i++) {
            byte[] data = new byte[1 + random.nextInt(16 << 10)];
            random.nextBytes(data);
            try (var writer = store.blobs().create()) {
                writer.write(data, 0, data.length);
                B3Digest digest = writer.finish();
                if (!digest.equals(Blake3.digest(data))) {
                    throw new IOException("warm-up: the memory store named a blob wrongly");
                }
                blobs.add(new ChunkMeta(digest, data.length));
            }
        }
        List<B3Digest> directories = new ArrayList<>();
        Directory below = null;
        for (int d = 0; d < DIRECTORIES; d++) {
            var builder = Directory.builder();
            for (int i = 0; i < BLOBS; i++) {
                ChunkMeta blob = blobs.get((i + d) % BLOBS);
                builder.add("f" + i, new FileNode(blob.digest(), blob.size(), i % 5 == 0));
            }
            if (below != null) {
                builder.add("sub", below.toNode());
            }
            below = builder.build();
            store.directories().put(below); // leaves first: each after the one it lists
            directories.add(below.digest());
        }
        store.roots().put(Name.of(ROOT), below.toNode());
        return new Synthetic(List.copyOf(directories), List.copyOf(blobs));
    }

    private void calls(Connection connection, Synthetic data, BooleanSupplier stop) throws IOException {
        var blobs = new RemoteBlobService(connection);
        var directories = new RemoteDirectoryService(connection);
        var roots = new RemoteRootService(connection);
        int calls = 0;
        // Asked before every call, not once per round of 24 gets: the mount's first workload may
        // start at any moment, and at nice 19 on a CPU that workload keeps busy, each call can
        // take milliseconds.
        try {
            while (calls < CALLS) {
                for (B3Digest digest : data.directories()) {
                    if (stop.getAsBoolean()) {
                        return;
                    }
                    directories.get(digest).orElseThrow(() -> new IOException("warm-up: directory missing on its own server"));
                    calls++;
                }
                for (int i = 0; i < data.blobs().size() / 2; i++) {
                    if (stop.getAsBoolean()) {
                        return;
                    }
                    ChunkMeta blob = data.blobs().get((calls + i) % data.blobs().size());
                    blobs.chunks(blob.digest()).orElseThrow(() -> new IOException("warm-up: blob missing on its own server"));
                    blobs.readChunk(blob).orElseThrow(() -> new IOException("warm-up: blob missing on its own server"));
                    calls += 2;
                }
                if (stop.getAsBoolean()) {
                    return;
                }
                roots.get(Name.of(ROOT)).orElseThrow(() -> new IOException("warm-up: root missing on its own server"));
                calls++;
            }
        } finally {
            callsMade = calls;
        }
    }

    @Override
    public void close() {
        // holds nothing between warm-ups
    }

    private static ThreadFactory named(String prefix) {
        AtomicInteger count = new AtomicInteger();
        return runnable -> {
            Thread thread = new Thread(runnable, prefix + "-" + count.incrementAndGet());
            thread.setDaemon(true);
            return thread;
        };
    }
}
