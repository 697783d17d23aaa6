package castore.s3;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.service.StoreOptions;
import castore.service.Stores;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A bucket in another region than the address says: S3 answers the bucket check with a redirect
 * (301, HEAD has no body) naming the bucket's region in {@code x-amz-bucket-region}; the error
 * says so, not just "HTTP 301".
 */
class S3RegionMismatchTest {
    private HttpServer server;
    private final SavedProperties properties = new SavedProperties();

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", exchange -> {
            exchange.getResponseHeaders().add("x-amz-bucket-region", "eu-west-1");
            exchange.sendResponseHeaders(301, -1);
            exchange.close();
        });
        server.start();
        properties.set("aws.accessKeyId", "k").set("aws.secretAccessKey", "s");
    }

    @AfterEach
    void stop() {
        server.stop(0);
        properties.close();
    }

    @Test
    void aBucketInAnotherRegionIsNamedWithItsRegion() {
        String address = "s3://bucket/prefix?region=us-east-1&endpoint=http://127.0.0.1:" + server.getAddress().getPort();
        assertThatThrownBy(() -> Stores.open(address, StoreOptions.DEFAULT).close()).isInstanceOf(IOException.class)
                .hasMessageContaining("eu-west-1").hasMessageContaining("region=eu-west-1");
    }
}
