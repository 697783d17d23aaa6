package castore.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.model.B3Digest;
import castore.model.Name;
import castore.service.BlobReader;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The server goes away while a store is open: operations fail with IOException, then work again. */
class S3RestartTest {
    @TempDir
    Path serverDir;

    @Test
    void serverStoppedAndRestartedMidUse() throws IOException {
        try (S3ProxyServer server = S3ProxyServer.start(serverDir)) {
            server.createBucket("restart");
            var options = new StoreOptions(false, Duration.ofSeconds(2), Map.of());
            try (Store store = Stores.open(server.address("restart", "p"), options)) {
                byte[] data = S3StoreTest.random(900_000, 11);
                B3Digest digest;
                try (var w = store.blobs().create()) {
                    w.write(data, 0, data.length);
                    digest = w.finish();
                }
                store.roots().put(Name.of("r"), new castore.model.FileNode(digest, data.length, false));
                BlobReader reader = store.blobs().open(digest).orElseThrow();

                server.stop();
                assertThatThrownBy(() -> reader.read(0, ByteBuffer.allocate(10))).isInstanceOf(IOException.class)
                        .hasMessageContaining("s3 get");
                assertThatThrownBy(() -> store.roots().get(Name.of("r"))).isInstanceOf(IOException.class);
                assertThatThrownBy(() -> store.blobs().has(digest)).isInstanceOf(IOException.class);

                server.restart();
                assertThat(store.roots().get(Name.of("r"))).isPresent();
                assertThat(S3StoreTest.readAll(reader)).isEqualTo(data);
            }
        }
    }
}
