package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.grpc.server.CastoreServer;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Unix socket: private mode, stale sockets replaced, live ones and other files left alone. */
class UnixSocketTest {
    @TempDir
    Path dir;

    private CastoreServer start(Path socket) throws IOException {
        return CastoreServer.start(TestServer.memoryStore(), new CastoreServer.Config(new ListenAddress.Unix(socket), false));
    }

    @Test
    void socketIsPrivateAndRemovedOnShutdown() throws Exception {
        Path socket = dir.resolve("castore.sock");
        CastoreServer server = start(socket);
        try {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(socket))).isEqualTo("rw-------");
            try (var files = Files.list(dir)) {
                assertThat(files.map(p -> p.getFileName().toString()).toList()).containsExactly("castore.sock");
            }
            assertThatThrownBy(() -> start(socket)).isInstanceOf(IOException.class).hasMessageContaining("in use by another server");
        } finally {
            server.shutdown(Duration.ofSeconds(5));
        }
        assertThat(socket).doesNotExist();
    }

    @Test
    void staleSocketIsReplaced() throws Exception {
        Path socket = dir.resolve("stale.sock");
        try (var old = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            old.bind(UnixDomainSocketAddress.of(socket));
        }
        assertThat(socket).exists(); // closed, nobody listening
        try (var server = new TestServerFor(start(socket))) {
            assertThat(Files.getPosixFilePermissions(socket)).hasSize(2);
        }
    }

    @Test
    void otherFilesAreNotTouched() throws Exception {
        Path file = dir.resolve("file");
        Files.writeString(file, "keep");
        assertThatThrownBy(() -> start(file)).isInstanceOf(IOException.class).hasMessageContaining("not a socket");
        assertThat(file).hasContent("keep");
        // A FIFO is "other" too, and a connect to it fails as to a stale socket: it stays.
        Path fifo = dir.resolve("fifo");
        assertThat(new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start().waitFor()).isZero();
        assertThatThrownBy(() -> start(fifo)).isInstanceOf(IOException.class).hasMessageContaining("not a socket");
        assertThat((Integer) Files.getAttribute(fifo, "unix:mode", java.nio.file.LinkOption.NOFOLLOW_LINKS) & 0170000).isEqualTo(0010000);
        assertThatThrownBy(() -> start(dir.resolve("no/such/dir/s"))).isInstanceOf(IOException.class).hasMessageContaining("no such directory");
    }

    /**
     * A socket path near the kernel's limit (108 bytes with its NUL) that the socket itself can
     * have: the daemon binds it first in a private directory next to it, whose path must not be
     * the one too long.
     */
    @Test
    void aPathNearTheLengthLimitIsServed() throws Exception {
        Path deep = dir;
        while (deep.toString().length() < 80) {
            deep = deep.resolve("d123456789");
        }
        Files.createDirectories(deep);
        String name = "s".repeat(100 - deep.toString().length() - 1);
        Path socket = deep.resolve(name);
        assertThat(socket.toString()).hasSize(100);
        try (var server = new TestServerFor(start(socket))) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(socket))).isEqualTo("rw-------");
            try (var client = java.nio.channels.SocketChannel.open(StandardProtocolFamily.UNIX)) {
                client.connect(UnixDomainSocketAddress.of(socket));
            }
            try (var files = Files.list(deep)) {
                assertThat(files.map(p -> p.getFileName().toString()).toList()).containsExactly(name);
            }
        }
        assertThat(socket).doesNotExist();
        Path tooLong = deep.resolve("s".repeat(107 - deep.toString().length()));
        assertThatThrownBy(() -> start(tooLong)).isInstanceOf(IOException.class)
                .hasMessageContaining("108 bytes long; a Unix socket path can have at most 107");
        try (var files = Files.list(deep)) {
            assertThat(files.toList()).isEmpty();
        }
    }

    private record TestServerFor(CastoreServer server) implements AutoCloseable {
        @Override
        public void close() throws InterruptedException {
            server.shutdown(Duration.ofSeconds(5));
        }
    }
}
