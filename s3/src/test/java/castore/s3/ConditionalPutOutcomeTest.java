package castore.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * A conditional write whose answer is lost in transit (as S3Proxy's refusal of one was on a busy
 * machine: "Error writing request body to server") is decided by what the object holds afterwards. The server here drops every PUT unanswered and serves GETs of one object.
 */
class ConditionalPutOutcomeTest {
    private ServerSocket socket;
    private Thread server;
    /** The object every GET returns; null: 404. */
    private volatile byte[] current;
    private volatile String etag;
    private S3Client client;
    private Bucket bucket;

    @BeforeEach
    void start() throws IOException {
        socket = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        server = Thread.ofVirtual().start(() -> {
            while (!socket.isClosed()) {
                try (Socket connection = socket.accept()) {
                    answer(connection);
                } catch (IOException ignored) {
                    // closed, or the client went away
                }
            }
        });
        client = S3Client.builder().endpointOverride(URI.create("http://127.0.0.1:" + socket.getLocalPort()))
                .forcePathStyle(true).region(Region.US_EAST_1).httpClient(UrlConnectionHttpClient.create())
                .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create("k", "s"))).build();
        bucket = new Bucket(client, S3Location.parse(URI.create("s3://bucket/prefix")));
    }

    @AfterEach
    void stop() throws Exception {
        client.close();
        socket.close();
        server.join();
    }

    private void answer(Socket connection) throws IOException {
        var in = new BufferedReader(new InputStreamReader(connection.getInputStream(), StandardCharsets.ISO_8859_1));
        String requestLine = in.readLine();
        for (String header = in.readLine(); header != null && !header.isEmpty(); header = in.readLine()) {
            // headers: nothing to look at
        }
        if (requestLine == null || requestLine.startsWith("PUT")) {
            return; // closed with the body unread and no answer
        }
        OutputStream out = connection.getOutputStream();
        byte[] body = current;
        if (body == null) {
            byte[] error = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code><Message>none</Message></Error>"
                    .getBytes(StandardCharsets.UTF_8);
            out.write(("HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\nContent-Length: " + error.length
                    + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
            out.write(error);
        } else {
            out.write(("HTTP/1.1 200 OK\r\nETag: \"" + etag + "\"\r\nContent-Type: application/octet-stream\r\nContent-Length: "
                    + body.length + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
            out.write(body);
        }
        out.flush();
    }

    private void holds(byte[] bytes, String tag) {
        current = bytes;
        etag = tag;
    }

    @Test
    void anIfMatchWriteLostInTransitIsRefusedWhenTheObjectChanged() throws IOException {
        holds(new byte[] {9}, "e2");
        assertThat(bucket.putIfMatch("root", new byte[] {3}, "\"e1\"")).isFalse();
    }

    @Test
    void anIfNoneMatchWriteLostInTransitIsRefusedWhenTheObjectExists() throws IOException {
        holds(new byte[] {9}, "e2");
        assertThat(bucket.putIfAbsent("root", new byte[] {3})).isFalse();
    }

    @Test
    void aWriteLostInTransitLandedWhenTheObjectHoldsItsBytes() throws IOException {
        holds(new byte[] {3}, "e3");
        assertThat(bucket.putIfMatch("root", new byte[] {3}, "\"e1\"")).isTrue();
        assertThat(bucket.putIfAbsent("root", new byte[] {3})).isTrue();
    }

    @Test
    void aWriteLostInTransitThatNothingExplainsIsAFailure() {
        holds(new byte[] {1}, "e1");
        assertThatThrownBy(() -> bucket.putIfMatch("root", new byte[] {3}, "\"e1\"")).isInstanceOf(IOException.class)
                .hasMessageContaining("s3 put");
        holds(null, null);
        assertThatThrownBy(() -> bucket.putIfAbsent("root", new byte[] {3})).isInstanceOf(IOException.class)
                .hasMessageContaining("s3 put");
    }
}
