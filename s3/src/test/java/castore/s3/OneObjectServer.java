package castore.s3;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * A loopback HTTP server that misbehaves on purpose: every GET returns one object (or 404), with
 * its body cut short if asked; every PUT is dropped unanswered with its body unread. One
 * connection at a time, each closed after its answer. A JUnit extension: started before each
 * test, stopped after it.
 */
final class OneObjectServer implements BeforeEachCallback, AfterEachCallback {
    private ServerSocket socket;
    private Thread server;
    private S3Client client;
    /** The object every GET returns; null: 404. */
    private volatile byte[] current;
    private volatile String etag;
    /** Bytes of the body actually sent; -1: all of it. */
    private volatile int sendOnly = -1;

    @Override
    public void beforeEach(ExtensionContext context) throws IOException {
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
    }

    /** A bucket in this server, store prefix "prefix/". */
    Bucket bucket() {
        return new Bucket(client, S3Location.parse(URI.create("s3://bucket/prefix")));
    }

    void holds(byte[] bytes, String tag) {
        current = bytes;
        etag = tag;
    }

    /** GETs send only the first {@code bytes} of the body, with the whole body's Content-Length. */
    void cutBodiesAfter(int bytes) {
        sendOnly = bytes;
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
            int cut = sendOnly;
            out.write(body, 0, cut < 0 ? body.length : Math.min(cut, body.length));
        }
        out.flush();
    }

    @Override
    public void afterEach(ExtensionContext context) throws Exception {
        client.close();
        socket.close();
        server.join();
    }
}
