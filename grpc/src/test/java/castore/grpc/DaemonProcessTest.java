package castore.grpc;

import static castore.grpc.RecordingBlobService.await;
import static org.assertj.core.api.Assertions.assertThat;

import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.DirectoryServiceGrpc;
import castore.grpc.proto.GetDirectoryRequest;
import castore.grpc.proto.PutDirectoryResponse;
import castore.grpc.proto.ReadBlobRequest;
import castore.hash.Blake3;
import castore.model.Directory;
import castore.model.FileNode;
import com.google.protobuf.ByteString;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
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
        Process daemon = start(stderr, List.of(), "unix://" + socket);
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

    @Test
    void servingBeyondLoopbackWithoutTlsIsWarnedOfBeforeTheServingLine() throws Exception {
        Path stderr = dir.resolve("daemon.log");
        Process daemon = start(stderr, List.of(), "0.0.0.0:0");
        Callable<List<String>> log = () -> Files.readAllLines(stderr).stream().filter(l -> l.startsWith("castore daemon:")).toList();
        try {
            await("the daemon is serving", () -> log.call().stream().anyMatch(l -> l.contains(": serving ")) || !daemon.isAlive());
            assertThat(log.call()).hasSize(2);
            String port = log.call().get(1).replaceFirst("^castore daemon: serving memory:// on 0\\.0\\.0\\.0:([0-9]+)$", "$1");
            assertThat(port).as("the port bound").matches("[1-9][0-9]*");
            assertThat(log.call().get(0)).startsWith("castore daemon: warning: 0.0.0.0:" + port + " can be reached from other "
                    + "machines and is served without TLS");
        } finally {
            daemon.destroyForcibly().waitFor();
        }
    }

    /**
     * A closure Put is held whole until it is checked, up to MAX_CLOSURE_BYTES (512 MiB) of
     * encoded Directories. Held as decoded Directories it took about 4.7 times its encoded size
     * (a Name, a digest and a node object per entry), so a daemon with a 256 MiB heap (the JVM's
     * default on a 1 GiB host) ran out of memory on a 128 MiB closure, a quarter of the limit.
     */
    @Test
    void aLargeClosureIsHeldAtAboutItsEncodedSize() throws Exception {
        Path socket = dir.resolve("c.sock");
        Path stderr = dir.resolve("closure.log");
        Process daemon = start(stderr, List.of("-Xmx256m"), "unix://" + socket, dir.resolve("store").toString());
        Callable<List<String>> log = () -> Files.readAllLines(stderr).stream().filter(l -> l.startsWith("castore daemon:")).toList();
        ManagedChannel channel = null;
        try {
            await("the daemon is serving", () -> !log.call().isEmpty() || !daemon.isAlive());
            assertThat(daemon.isAlive()).isTrue();
            channel = Grpc.newChannelBuilder("unix://" + socket, InsecureChannelCredentials.create()).build();
            var done = new CompletableFuture<Status>();
            var rootDigest = new CompletableFuture<ByteString>();
            var requests = new CompletableFuture<ClientCallStreamObserver<castore.proto.Directory>>();
            DirectoryServiceGrpc.newStub(channel).put(new ClientResponseObserver<castore.proto.Directory, PutDirectoryResponse>() {
                @Override
                public void beforeStart(ClientCallStreamObserver<castore.proto.Directory> stream) {
                    requests.complete(stream);
                }

                @Override
                public void onNext(PutDirectoryResponse response) {
                    rootDigest.complete(response.getRootDigest());
                }

                @Override
                public void onError(Throwable t) {
                    done.complete(Status.fromThrowable(t));
                }

                @Override
                public void onCompleted() {
                    done.complete(Status.OK);
                }
            });
            ClientCallStreamObserver<castore.proto.Directory> put = requests.join();
            // 128 MiB of leaves of 1000 files each (about 56 KiB encoded), under one root.
            Directory.Builder root = Directory.builder();
            long sent = 0;
            for (int d = 0; sent < 128 << 20; d++) {
                Directory.Builder leaf = Directory.builder();
                for (int i = 0; i < 1000; i++) {
                    leaf.add("file-" + d + "-" + i + ".txt", new FileNode(Blake3.digest(new byte[] {(byte) i, (byte) (i >> 8), (byte) d, (byte) (d >> 8)}), i, false));
                }
                Directory built = leaf.build();
                long waitUntil = System.nanoTime() + 60_000_000_000L;
                while (!put.isReady() && !done.isDone()) {
                    assertThat(System.nanoTime()).as("the daemon takes the closure (sent %d bytes)", sent).isLessThan(waitUntil);
                    Thread.sleep(1);
                }
                put.onNext(built.toProto());
                sent += built.encode().length;
                root.add("d" + d, built.toNode());
            }
            Directory top = root.build();
            put.onNext(top.toProto());
            put.onCompleted();
            assertThat(done.get(100, TimeUnit.SECONDS)).isEqualTo(Status.OK);
            assertThat(rootDigest.join()).isEqualTo(top.digest().toByteString());
            var stored = DirectoryServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
                    .get(GetDirectoryRequest.newBuilder().setDigest(top.digest().toByteString()).build());
            assertThat(Directory.fromProto(stored.next())).isEqualTo(top);
            assertThat(daemon.isAlive()).isTrue();
        } finally {
            if (channel != null) {
                channel.shutdownNow();
            }
            daemon.destroyForcibly().waitFor();
        }
    }

    /**
     * A tvix client puts blobs and Directories and never a root. The local store makes writes
     * durable, and visible to other processes, only when it commits, and a root put was the
     * daemon's only commit before its close: a daemon killed after acknowledging an upload lost
     * it, and another process (a mount, a gc) never saw it while the daemon ran. Now the daemon
     * commits once uploads pause (a second).
     */
    @Test
    void anUploadWithoutARootIsCommittedOncePutsPauseAndSurvivesAKill() throws Exception {
        Path socket = dir.resolve("u.sock");
        Path storeDir = dir.resolve("store");
        Process daemon = start(dir.resolve("upload.log"), List.of(), "unix://" + socket, storeDir.toString());
        byte[] data = TestData.random(73, 300_000);
        try {
            await("the daemon is serving", () -> Files.exists(socket) && accepts(socket) || !daemon.isAlive());
            assertThat(daemon.isAlive()).isTrue();
            castore.model.B3Digest blob;
            Directory listing;
            try (var remote = castore.service.Stores.open("grpc+unix://" + socket, castore.service.StoreOptions.DEFAULT)) {
                blob = TestData.put(remote.blobs(), data);
                listing = Directory.builder().add("data.bin", new FileNode(blob, data.length, false)).build();
                remote.directories().put(listing);
            }
            // Another process's view: only what the daemon committed.
            await("the upload is committed", () -> {
                try (var local = castore.store.local.LocalStore.openExisting(storeDir,
                        castore.store.local.LocalStore.Options.defaults().withReadOnly(true)); var view = local.asStore()) {
                    return view.blobs().has(blob) && view.directories().get(listing.digest()).isPresent();
                }
            });
            daemon.destroyForcibly().waitFor(); // SIGKILL: no close, no commit at exit
            try (var local = castore.store.local.LocalStore.open(storeDir, castore.store.local.LocalStore.Options.defaults());
                    var after = local.asStore()) {
                assertThat(after.directories().get(listing.digest())).contains(listing);
                try (var reader = after.blobs().open(blob).orElseThrow()) {
                    assertThat(reader.inputStream(0).readAllBytes()).isEqualTo(data);
                }
            }
        } finally {
            daemon.destroyForcibly().waitFor();
        }
    }

    private static Process start(Path stderr, List<String> jvmOptions, String... args) throws java.io.IOException {
        var command = new java.util.ArrayList<String>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvmOptions);
        command.addAll(List.of("--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), DaemonMain.class.getName()));
        command.addAll(List.of(args));
        return new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(stderr.toFile()).start();
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
