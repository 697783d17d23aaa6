package castore.s3;

import static org.assertj.core.api.Assertions.assertThat;

import castore.service.BackendWarmUp;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import castore.service.cache.StoreCache;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** An S3 store offers a warm-up of its request path that runs on an in-memory S3, never on the bucket. */
class S3WarmUpTest {
    @RegisterExtension
    static final SharedS3Proxy S3 = new SharedS3Proxy();

    @Test
    void anS3StoreOffersAWarmUpThatReadsThroughTheSdkWithoutTouchingTheBucket(@TempDir Path cache) throws Exception {
        String prefix = "t-warm-up-" + java.util.UUID.randomUUID();
        String address = S3.server().address(SharedS3Proxy.BUCKET, prefix);
        try (Store store = StoreCache.apply(Stores.open(address, StoreOptions.DEFAULT), List.of(address),
                Optional.of(cache), 1L << 30, castore.service.cache.CacheConfig.DEFAULT_MEMORY_LIMIT, false)) {
            List<BackendWarmUp> warmUps = store.warmUps();
            assertThat(warmUps).hasSize(1).first().isInstanceOf(S3WarmUp.class);
            S3WarmUp warmUp = (S3WarmUp) warmUps.get(0);
            warmUp.warmUp(() -> false);
            assertThat(warmUp.getsMade()).isGreaterThanOrEqualTo(S3WarmUp.GETS);
            // The bucket holds nothing under the store's prefix: every object went to the in-memory S3.
            assertThat(objectsUnder(prefix)).isZero();
            assertThat(store.roots().list().count()).isZero();
        }
    }

    @Test
    void aWarmUpStopsAsSoonAsItIsAsked() throws Exception {
        var warmUp = new S3WarmUp();
        AtomicInteger asked = new AtomicInteger();
        warmUp.warmUp(() -> asked.incrementAndGet() > 5);
        assertThat(warmUp.getsMade()).isPositive().isLessThan(S3WarmUp.GETS / 4);
        warmUp.warmUp(() -> true);
        assertThat(warmUp.getsMade()).isZero();
    }

    private static long objectsUnder(String prefix) throws IOException {
        try (var client = S3.server().client()) {
            return client.listObjectsV2(b -> b.bucket(SharedS3Proxy.BUCKET).prefix(prefix)).keyCount();
        }
    }
}
