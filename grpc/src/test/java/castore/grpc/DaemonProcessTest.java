package castore.grpc;

import static castore.grpc.RecordingBlobService.await;
import static org.assertj.core.api.Assertions.assertThat;

import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.ReadBlobRequest;
import castore.hash.Blake3;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The daemon as a process: one log line at start and stop; SIGTERM lets calls in flight finish. */
@Timeout(120)
class DaemonProcessTest {
    @TempDir
    Path dir;

    @Test
    void sigtermFinishesCallsInFlight() throws Exception {
        Path socket = dir.resolve("d.sock");
        Path stderr = dir.resolve("daemon.log");
        Process daemon = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                DaemonMain.class.getName(), "unix://" + socket)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(stderr.toFile()).start();
        // The daemon's own lines; the JVM and gRPC may log other things.
        Callable<List<String>> log = () -> Files.readAllLines(stderr).stream().filter(l -> l.startsWith("castore daemon:")).toList();
        ManagedChannel channel = null;
        try {
            await("the daemon is serving", () -> !log.call().isEmpty() || !daemon.isAlive());
            assertThat(log.call().getFirst()).isEqualTo("castore daemon: serving memory:// on unix://" + socket);

            channel = Grpc.newChannelBuilder("unix://" + socket, InsecureChannelCredentials.create()).build();
            // A Read in flight: the first message proves the daemon is serving it; flow control
            // keeps the rest of the 8 MiB waiting for us.
            var read = BlobServiceGrpc.newBlockingStub(channel)
                    .read(ReadBlobRequest.newBuilder().setDigest(Blake3.digest(DaemonMain.BLOB).toByteString()).build());
            var received = new ByteArrayOutputStream();
            read.next().getData().writeTo(received);

            daemon.destroy(); // SIGTERM
            await("the daemon stops accepting", () -> !Files.exists(socket) || !accepts(socket));

            while (read.hasNext()) {
                read.next().getData().writeTo(received);
            }
            assertThat(received.toByteArray()).isEqualTo(DaemonMain.BLOB);

            assertThat(daemon.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(log.call()).containsExactly("castore daemon: serving memory:// on unix://" + socket, "castore daemon: stopped");
            assertThat(daemon.exitValue()).isEqualTo(143); // terminated by SIGTERM, after the shutdown hook
            assertThat(socket).doesNotExist();
        } finally {
            if (channel != null) {
                channel.shutdownNow();
            }
            daemon.destroyForcibly().waitFor();
        }
    }

    private static boolean accepts(Path socket) {
        try (var probe = java.nio.channels.SocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            probe.connect(java.net.UnixDomainSocketAddress.of(socket));
            return true;
        } catch (java.io.IOException e) {
            return false;
        }
    }
}
