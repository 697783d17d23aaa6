package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.grpc.server.CastoreServer;
import castore.model.B3Digest;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A daemon that goes away makes operations fail (after the client's timeout, not hang), and once
 * it is back on the same address the same client works again.
 */
@Timeout(120)
class ReconnectTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(TestServer.Transport.class)
    void clientRecoversWhenTheDaemonComesBack(TestServer.Transport transport) throws Exception {
        Store backing = TestServer.memoryStore();
        var first = TestServer.start(transport, dir, backing, false);
        ListenAddress address = first.server.address();
        byte[] data = TestData.random(41, 700_000);
        var quick = new StoreOptions(false, Duration.ofSeconds(1), Map.of());
        try (Store client = Stores.open(first.clientAddress(), quick)) {
            B3Digest digest = answered(() -> TestData.put(client.blobs(), data));
            first.server.shutdown(Duration.ofSeconds(5));

            assertThatThrownBy(() -> client.blobs().has(digest)).isInstanceOf(IOException.class)
                    .hasMessageContaining(first.clientAddress()).hasMessageContaining("could not be reached within 1000 ms");
            assertThatThrownBy(() -> TestData.readAll(client.blobs(), digest)).isInstanceOf(IOException.class);
            assertThatThrownBy(() -> client.directories().get(digest)).isInstanceOf(IOException.class);

            try (CastoreServer second = CastoreServer.start(backing, new CastoreServer.Config(address, false))) {
                assertThat(answered(() -> client.blobs().has(digest))).as("the same client, reconnected").isTrue();
                assertThat(TestData.readAll(client.blobs(), digest)).isEqualTo(data);
                byte[] more = TestData.random(42, 1000);
                assertThat(TestData.readAll(client.blobs(), TestData.put(client.blobs(), more))).isEqualTo(more);
            }
        } finally {
            backing.close();
        }
    }

    /**
     * A write to an address nobody serves fails after the timeout with what the user was doing and
     * where, not with the name of the service the client asks first (it said "probe
     * ChunkedBlobService" until session 47).
     */
    @org.junit.jupiter.api.Test
    void aWriteToAnAddressNobodyServesSaysWhatFailedAndWhere() throws Exception {
        int port;
        try (var socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = socket.getLocalPort(); // closed again: nothing listens there
        }
        String address = "grpc+http://127.0.0.1:" + port;
        var quick = new StoreOptions(false, Duration.ofSeconds(1), Map.of());
        try (Store client = Stores.open(address, quick)) {
            assertThatThrownBy(() -> TestData.put(client.blobs(), TestData.random(43, 1000))).isInstanceOf(IOException.class)
                    .hasMessageStartingWith("write to the store").hasMessageContaining(address)
                    .hasMessageContaining("could not be reached within 1000 ms").hasMessageNotContaining("probe");
        }
    }

    /**
     * {@code call}'s answer, tried up to 10 times: with a 1 s timeout, a JVM's first call or the
     * first one after a restart (the channel backing off, the server cold) can miss it on a busy
     * machine. Recovery by the same client is what is tested, not how fast it comes.
     */
    static <T> T answered(java.util.concurrent.Callable<T> call) throws Exception {
        IOException last = null;
        for (int attempt = 0; attempt < 10; attempt++) {
            try {
                return call.call();
            } catch (IOException e) {
                last = e;
            }
        }
        throw last;
    }
}
