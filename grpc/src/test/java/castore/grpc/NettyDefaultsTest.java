package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.netty.shaded.io.netty.util.ResourceLeakDetector;
import io.grpc.netty.shaded.io.netty.util.ResourceLeakDetector.Level;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Netty's leak detector is off in castore's daemon and clients unless a level is asked for. */
class NettyDefaultsTest {
    @TempDir
    Path dir;

    @AfterEach
    void restore() {
        System.clearProperty(NettyDefaults.LEAK_DETECTION_PROPERTY);
        NettyDefaults.apply();
    }

    @Test
    void aDaemonAndAClientTurnItOffAndStillServe() throws Exception {
        ResourceLeakDetector.setLevel(Level.SIMPLE); // Netty's default
        try (var server = TestServer.start(TestServer.Transport.TCP, dir)) {
            assertThat(ResourceLeakDetector.getLevel()).as("after the daemon started").isEqualTo(Level.DISABLED);
            ResourceLeakDetector.setLevel(Level.SIMPLE);
            byte[] data = TestData.random(7, 300_000);
            assertThat(TestData.readAll(server.client().blobs(), TestData.put(server.client().blobs(), data))).isEqualTo(data);
            assertThat(ResourceLeakDetector.getLevel()).as("after a client connected").isEqualTo(Level.DISABLED);
        }
    }

    @Test
    void aLevelAskedForWithTheShadedPropertyIsKept() throws Exception {
        System.setProperty(NettyDefaults.LEAK_DETECTION_PROPERTY, "paranoid");
        ResourceLeakDetector.setLevel(Level.PARANOID);
        try (var server = TestServer.start(TestServer.Transport.UNIX, dir)) {
            byte[] data = TestData.random(8, 100_000);
            assertThat(TestData.readAll(server.client().blobs(), TestData.put(server.client().blobs(), data))).isEqualTo(data);
            assertThat(ResourceLeakDetector.getLevel()).isEqualTo(Level.PARANOID);
        }
    }
}
