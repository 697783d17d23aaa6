package castore.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.model.B3Digest;
import castore.model.Name;
import castore.service.BlobReader;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import castore.service.cache.CacheConfig;
import castore.service.cache.StoreCache;
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
            var options = new StoreOptions(false, Duration.ofSeconds(15), Map.of()); // a just-restarted S3Proxy answers its first request slowly
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

    @Test
    void cachedDataStaysReadableWhileTheServerIsDown() throws IOException {
        try (S3ProxyServer server = S3ProxyServer.start(serverDir.resolve("server"))) {
            server.createBucket("cached");
            var options = new StoreOptions(false, Duration.ofSeconds(15), Map.of()); // a just-restarted S3Proxy answers its first request slowly
            byte[] seen = S3StoreTest.random(700_000, 12);
            byte[] unseen = S3StoreTest.random(300_000, 13);
            B3Digest seenDigest;
            B3Digest unseenDigest;
            try (Store plain = Stores.open(server.address("cached", "p"), options)) {
                seenDigest = write(plain, seen);
                unseenDigest = write(plain, unseen);
            }
            Path cacheDir = serverDir.resolve("cache");
            try (Store store = StoreCache.wrap(Stores.open(server.address("cached", "p"), options),
                    CacheConfig.onDisk(cacheDir, 1L << 30))) {
                try (BlobReader r = store.blobs().open(seenDigest).orElseThrow()) {
                    assertThat(S3StoreTest.readAll(r)).isEqualTo(seen);
                }
                server.stop();
                try (BlobReader r = store.blobs().open(seenDigest).orElseThrow()) {
                    assertThat(S3StoreTest.readAll(r)).isEqualTo(seen); // all local now
                }
                assertThatThrownBy(() -> store.blobs().open(unseenDigest)).isInstanceOf(IOException.class);
                server.restart();
                try (BlobReader r = store.blobs().open(unseenDigest).orElseThrow()) {
                    assertThat(S3StoreTest.readAll(r)).isEqualTo(unseen);
                }
            }
        }
    }

    private static B3Digest write(Store store, byte[] data) throws IOException {
        try (var w = store.blobs().create()) {
            w.write(data, 0, data.length);
            return w.finish();
        }
    }
}
