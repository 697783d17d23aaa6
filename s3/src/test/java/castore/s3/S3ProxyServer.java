package castore.s3;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * A real S3-compatible server for tests: S3Proxy with its filesystem backend, run as its own
 * process on 127.0.0.1 so a test can stop and restart it (same port, same data). Outside CI a
 * machine without the jar skips; under CI=true that is a failure. Other modules' tests use it
 * through castore-s3's test-jar; the jar is found through the castore.s3proxy.jar property or in
 * the local Maven repository (the s3 module's build downloads it).
 */
public final class S3ProxyServer implements AutoCloseable {
    public static final String ACCESS_KEY = "castore-test";
    public static final String SECRET_KEY = "castore-test-secret";
    /** Keep in step with s3proxy.version in s3/pom.xml. */
    private static final String VERSION = "4.1.0";

    private final Path base;
    private final int port;
    private Process process;
    /** Whether {@link #close()} deletes {@code base}: the server made that directory itself. */
    private boolean ownsBase;

    private S3ProxyServer(Path base, int port) {
        this.base = base;
        this.port = port;
    }

    /** Starts a server storing under {@code base}, and makes the SDK's default chain find its credentials. */
    public static S3ProxyServer start(Path base) throws IOException {
        String jar = jarPath();
        boolean available = jar != null && Files.isRegularFile(Path.of(jar));
        if (!"true".equals(System.getenv("CI"))) {
            Assumptions.assumeTrue(available, "S3Proxy jar not found (castore.s3proxy.jar); run through Maven");
        } else if (!available) {
            throw new IllegalStateException("S3Proxy jar not found at " + jar);
        }
        System.setProperty("aws.accessKeyId", ACCESS_KEY);
        System.setProperty("aws.secretAccessKey", SECRET_KEY);
        int port;
        try (ServerSocket probe = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort();
        }
        S3ProxyServer server = new S3ProxyServer(base, port);
        Files.createDirectories(base.resolve("data"));
        Files.writeString(base.resolve("s3proxy.conf"), String.join("\n",
                "s3proxy.endpoint=http://127.0.0.1:" + port,
                "s3proxy.authorization=aws-v2-or-v4",
                "s3proxy.identity=" + ACCESS_KEY,
                "s3proxy.credential=" + SECRET_KEY,
                "jclouds.provider=filesystem-nio2",
                "jclouds.filesystem.basedir=" + base.resolve("data"),
                ""));
        server.startProcess();
        return server;
    }

    /**
     * Starts a server storing under a temporary directory of its own, which {@link #close()}
     * deletes (its data is tens of MB after a test run).
     */
    public static S3ProxyServer startInTemporaryDirectory() throws IOException {
        Path base = Files.createTempDirectory("castore-s3proxy");
        try {
            S3ProxyServer server = start(base);
            server.ownsBase = true;
            return server;
        } catch (IOException | RuntimeException e) {
            castore.io.FileTrees.deleteAsFarAsPossible(base);
            throw e;
        }
    }

    void startProcess() throws IOException {
        String java = ProcessHandle.current().info().command().orElse("java");
        process = new ProcessBuilder(List.of(java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-jar",
                jarPath(), "--properties", base.resolve("s3proxy.conf").toString()))
                .redirectErrorStream(true)
                .redirectOutput(base.resolve("s3proxy.log").toFile())
                .start();
        Instant deadline = Instant.now().plus(Duration.ofSeconds(60));
        while (Instant.now().isBefore(deadline)) {
            if (!process.isAlive()) {
                throw new IOException("S3Proxy exited with " + process.exitValue() + ": " + Files.readString(base.resolve("s3proxy.log")));
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 200);
                return;
            } catch (IOException notYet) {
                sleep(100);
            }
        }
        stop();
        throw new IOException("S3Proxy did not start within 60 s");
    }

    /** Kills the server (SIGKILL, like a crash: Jetty's graceful stop would wait for idle connections). */
    public void stop() {
        if (process != null && process.isAlive()) {
            process.destroyForcibly();
            try {
                process.waitFor(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Stops and starts again on the same port with the same data. */
    public void restart() throws IOException {
        stop();
        startProcess();
    }

    private static String jarPath() {
        String configured = System.getProperty("castore.s3proxy.jar");
        if (configured != null) {
            return configured;
        }
        Path m2 = Path.of(System.getProperty("user.home"), ".m2", "repository", "org", "gaul", "s3proxy", VERSION,
                "s3proxy-" + VERSION + "-jar-with-dependencies.jar");
        return Files.isRegularFile(m2) ? m2.toString() : null;
    }

    public URI endpoint() {
        return URI.create("http://127.0.0.1:" + port);
    }

    /** A store address for {@code bucket} and {@code prefix}. */
    public String address(String bucket, String prefix) {
        return "s3://" + bucket + "/" + prefix + "?endpoint=" + endpoint() + "&region=us-east-1";
    }

    /** A plain client, for creating buckets and tampering with objects behind the store's back. */
    public S3Client client() {
        return S3Client.builder().endpointOverride(endpoint()).forcePathStyle(true).region(Region.US_EAST_1)
                .httpClient(software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient.create())
                .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(ACCESS_KEY, SECRET_KEY)))
                .build();
    }

    /**
     * Backdates an object as the server sees it: the filesystem backend reports a file's
     * modification time as the object's Last-Modified.
     */
    public void backdate(String bucket, String key, java.time.Duration by) throws IOException {
        Path file = base.resolve("data").resolve(bucket).resolve(key);
        Files.setLastModifiedTime(file, java.nio.file.attribute.FileTime.from(Files.getLastModifiedTime(file).toInstant().minus(by)));
    }

    public void createBucket(String bucket) {
        try (S3Client c = client()) {
            c.createBucket(b -> b.bucket(bucket));
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        stop();
        if (ownsBase) {
            castore.io.FileTrees.deleteAsFarAsPossible(base);
        }
    }
}
