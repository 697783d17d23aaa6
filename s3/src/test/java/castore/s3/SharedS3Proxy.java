package castore.s3;

import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.io.IOException;
import java.util.UUID;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * One S3Proxy for every test class that registers this extension, started on first use and
 * stopped, and its directory deleted, when the whole test run ends (JUnit closes AutoCloseable
 * values of the root store).
 */
final class SharedS3Proxy implements BeforeAllCallback {
    static final String BUCKET = "castore-contract";
    private S3ProxyServer server;

    @Override
    public void beforeAll(ExtensionContext context) {
        server = context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL)
                .computeIfAbsent(SharedS3Proxy.class, key -> {
                    try {
                        S3ProxyServer s = S3ProxyServer.startInTemporaryDirectory();
                        s.createBucket(BUCKET);
                        return s;
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                }, S3ProxyServer.class);
    }

    /** A fresh, empty store: its own prefix in the shared bucket. */
    Store freshStore() throws IOException {
        return Stores.open(server.address(BUCKET, "contract-" + UUID.randomUUID()), StoreOptions.DEFAULT);
    }

    S3ProxyServer server() {
        return server;
    }

}
