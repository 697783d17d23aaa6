package castore.s3;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.model.InvalidDataException;
import castore.service.StoreOptions;
import castore.service.Stores;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** What opening an S3 store says when the endpoint's answer to the bucket check is not "here it is". */
class S3BucketCheckTest {
    private HttpServer server;
    private final SavedProperties properties = new SavedProperties();
    /** How the endpoint answers every request; each test sets it. */
    private volatile Answer answer;

    private interface Answer {
        void send(HttpExchange exchange) throws IOException;
    }

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", exchange -> {
            answer.send(exchange);
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

    private String endpoint() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    /**
     * A bucket in another region than the address says: S3 answers with a redirect (301, HEAD has
     * no body) naming the bucket's region in {@code x-amz-bucket-region}; the error says so, not
     * just "HTTP 301".
     */
    @Test
    void aBucketInAnotherRegionIsNamedWithItsRegion() {
        answer = exchange -> {
            exchange.getResponseHeaders().add("x-amz-bucket-region", "eu-west-1");
            exchange.sendResponseHeaders(301, -1);
        };
        String address = "s3://bucket/prefix?region=us-east-1&endpoint=" + endpoint();
        assertThatThrownBy(() -> Stores.open(address, StoreOptions.DEFAULT).close()).isInstanceOf(IOException.class)
                .hasMessageContaining("eu-west-1").hasMessageContaining("region=eu-west-1");
    }

    /**
     * An endpoint that is a web server, not S3 (a wrong port, a proxy's page), answers 404 as S3
     * does for a missing bucket. The error names the endpoint, so the user can see which server
     * said so; it said only "bucket 'b' does not exist (create it first)".
     */
    @Test
    void aWebServerThatIsNotS3IsNamedInTheError() {
        answer = exchange -> {
            byte[] page = "<html><body>Not Found</body></html>".getBytes(StandardCharsets.UTF_8);
            boolean head = exchange.getRequestMethod().equals("HEAD");
            exchange.getResponseHeaders().add("Content-Type", "text/html");
            exchange.sendResponseHeaders(404, head ? -1 : page.length);
            if (!head) {
                exchange.getResponseBody().write(page);
            }
        };
        assertThatThrownBy(() -> Stores.open("s3://bucket/prefix?region=us-east-1&endpoint=" + endpoint(), StoreOptions.DEFAULT).close())
                .isInstanceOf(InvalidDataException.class)
                .hasMessage("s3 bucket 'bucket' does not exist at " + endpoint() + " (create it first, or check that the endpoint is the S3 server)");
    }

    /**
     * A name S3 would never give a bucket ("b": too short; capitals, underscores) is answered
     * "no such bucket" by servers that keep to the rules, S3Proxy among them, even when a bucket
     * of that name was made by hand. The error says the name is the problem; it said "create it
     * first", which the user had done.
     */
    @Test
    void aBucketNameS3NeverGivesOutIsSaidToBeInvalid() {
        answer = exchange -> exchange.sendResponseHeaders(404, -1);
        for (String bucket : java.util.List.of("b", "My_Bucket", "-bucket", "a..b")) {
            assertThatThrownBy(() -> Stores.open("s3://" + bucket + "/prefix?region=us-east-1&endpoint=" + endpoint(), StoreOptions.DEFAULT).close())
                    .as(bucket).isInstanceOf(InvalidDataException.class)
                    .hasMessage("s3 bucket '" + bucket + "' does not exist at " + endpoint() + ": '" + bucket + "' is not a valid bucket name "
                            + "(3 to 63 lowercase letters, digits, dots and hyphens, beginning and ending with a letter or digit)");
        }
    }
}
