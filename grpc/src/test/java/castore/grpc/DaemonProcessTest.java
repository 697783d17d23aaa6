package castore.grpc;

import static castore.grpc.RecordingBlobService.await;
import static org.assertj.core.api.Assertions.assertThat;

import castore.grpc.proto.BlobChunk;
import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.PutBlobResponse;
import castore.hash.Blake3;
import com.google.protobuf.ByteString;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
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
            var answer = new CompletableFuture<PutBlobResponse>();
            StreamObserver<BlobChunk> put = BlobServiceGrpc.newStub(channel).put(new StreamObserver<>() {
                @Override
                public void onNext(PutBlobResponse value) {
                    answer.complete(value);
                }

                @Override
                public void onError(Throwable t) {
                    answer.completeExceptionally(t);
                }

                @Override
                public void onCompleted() {
                }
            });
            byte[] data = TestData.random(71, 2 << 20);
            put.onNext(BlobChunk.newBuilder().setData(ByteString.copyFrom(data, 0, 1 << 20)).build());

            daemon.destroy(); // SIGTERM
            await("the daemon stops accepting", () -> !Files.exists(socket) || !accepts(socket));

            put.onNext(BlobChunk.newBuilder().setData(ByteString.copyFrom(data, 1 << 20, 1 << 20)).build());
            put.onCompleted();
            assertThat(answer.get(30, TimeUnit.SECONDS).getDigest()).isEqualTo(Blake3.digest(data).toByteString());

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
