package castore.grpc.client;

import static org.assertj.core.api.Assertions.assertThat;

import castore.grpc.ListenAddress;
import castore.grpc.server.CastoreServer;
import castore.service.BackendWarmUp;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** A gRPC store offers a warm-up of the client's per-call path that runs on a server of its own, never the daemon. */
class GrpcWarmUpTest {
    private static final String THREADS = "castore-grpc-warm-up";

    @Test
    void aGrpcStoreOffersAWarmUpThatNeedsNoDaemonAndLeavesNoThreadBehind() throws Exception {
        Store backing = new Store(new MemoryBlobService(), new MemoryDirectoryService(), new MemoryRootService());
        CastoreServer daemon = CastoreServer.start(backing, new CastoreServer.Config(ListenAddress.parse("127.0.0.1:0"), false));
        String address = "grpc+http://" + daemon.address();
        try (Store store = Stores.open(address, StoreOptions.DEFAULT)) {
            List<BackendWarmUp> warmUps = store.warmUps();
            assertThat(warmUps).hasSize(1).first().isInstanceOf(GrpcWarmUp.class);
            daemon.close(); // the warm-up has a server of its own
            GrpcWarmUp warmUp = (GrpcWarmUp) warmUps.getFirst();
            warmUp.warmUp(() -> false);
            assertThat(warmUp.callsMade()).isGreaterThanOrEqualTo(GrpcWarmUp.CALLS);
            assertThat(backing.roots().list().count()).as("nothing written to the daemon's store").isZero();
            awaitNoWarmUpThreads();
        } finally {
            daemon.close();
        }
    }

    @Test
    void itStopsAtItsNextCallWhenAsked() throws Exception {
        var warmUp = new GrpcWarmUp();
        AtomicInteger asked = new AtomicInteger();
        var sharedBefore = sharedExecutorThreads();
        warmUp.warmUp(() -> asked.incrementAndGet() > 5);
        // Nothing of it ran on gRPC's shared executor (a host name would be resolved there), whose
        // threads the mount keeps: one started from the warm-up's thread would keep its nice 19.
        var sharedAfter = sharedExecutorThreads();
        sharedAfter.removeAll(sharedBefore);
        assertThat(sharedAfter).isEmpty();
        assertThat(warmUp.callsMade()).as("asked before each call: 5 calls, the 6th ask stops it").isEqualTo(5);
        warmUp.warmUp(() -> true);
        assertThat(warmUp.callsMade()).isZero();
        awaitNoWarmUpThreads();
    }

    /** Its event loop and executors end with it: none joins a pool the mount keeps. */
    private static void awaitNoWarmUpThreads() throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (liveWarmUpThreads() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertThat(liveWarmUpThreads()).isZero();
    }

    private static java.util.Set<Thread> sharedExecutorThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("grpc-default-executor"))
                .collect(java.util.stream.Collectors.toCollection(java.util.HashSet::new));
    }

    private static long liveWarmUpThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith(THREADS) && t.isAlive()).count();
    }
}
