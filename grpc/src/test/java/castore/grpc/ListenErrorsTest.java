package castore.grpc;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.grpc.server.CastoreServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import org.junit.jupiter.api.Test;

/** A daemon that cannot listen says why, naming the address (the CLI prints it as its one error line). */
class ListenErrorsTest {
    private static void start(ListenAddress address) throws IOException {
        CastoreServer.start(TestServer.memoryStore(), new CastoreServer.Config(address, false)).close();
    }

    @Test
    void aPortInUseIsNamed() throws Exception {
        try (var taken = new ServerSocket()) {
            taken.bind(new InetSocketAddress("127.0.0.1", 0));
            assertThatThrownBy(() -> start(new ListenAddress.Tcp("127.0.0.1", taken.getLocalPort())))
                    .isInstanceOf(IOException.class)
                    .hasMessageContaining("cannot listen on 127.0.0.1:" + taken.getLocalPort())
                    .hasMessageContaining("Address already in use");
        }
    }

    /** The message used to end in "null": the UnresolvedAddressException underneath has none. */
    @Test
    void aHostThatDoesNotResolveIsNamed() {
        assertThatThrownBy(() -> start(new ListenAddress.Tcp("nosuchhost.invalid", 0)))
                .isInstanceOf(IOException.class)
                .hasMessage("cannot listen on nosuchhost.invalid:0: cannot resolve host 'nosuchhost.invalid'");
    }
}
