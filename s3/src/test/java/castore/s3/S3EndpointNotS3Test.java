package castore.s3;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.model.InvalidDataException;
import castore.service.StoreOptions;
import castore.service.Stores;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * An endpoint that is a web server, not S3 (a wrong port, a proxy's page): it answers the
 * bucket check with 404 as S3 does for a missing bucket. The error names the endpoint, so the
 * user can see which server said so; it said only "bucket 'b' does not exist (create it first)".
 */
class S3EndpointNotS3Test {
    private HttpServer server;
    private final SavedProperties properties = new SavedProperties();

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", exchange -> {
            byte[] page = "<html><body>Not Found</body></html>".getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().add("Content-Type", "text/html");
            exchange.sendResponseHeaders(404, exchange.getRequestMethod().equals("HEAD") ? -1 : page.length);
            if (!exchange.getRequestMethod().equals("HEAD")) {
                exchange.getResponseBody().write(page);
            }
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
    void aWebServerThatIsNotS3IsNamedInTheError() {
        String endpoint = "http://127.0.0.1:" + server.getAddress().getPort();
        assertThatThrownBy(() -> Stores.open("s3://bucket/prefix?region=us-east-1&endpoint=" + endpoint, StoreOptions.DEFAULT).close())
                .isInstanceOf(InvalidDataException.class)
                .hasMessage("s3 bucket 'bucket' does not exist at " + endpoint + " (create it first, or check that the endpoint is the S3 server)");
    }
}
