package castore.grpc.server;

import static org.assertj.core.api.Assertions.assertThat;

import castore.grpc.ListenAddress;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The daemon warns, once at start, when it serves beyond this machine without TLS. */
class DaemonExposureTest {
    private static java.util.Optional<String> warning(String address, boolean readOnly) {
        return Daemon.exposureWarning(ListenAddress.parse(address), false, readOnly);
    }

    @Test
    void anAddressOtherMachinesReachWithoutTlsIsWarnedOf() {
        assertThat(warning("0.0.0.0:8000", false)).hasValue("castore daemon: warning: 0.0.0.0:8000 can be "
                + "reached from other machines and is served without TLS: anyone who connects reads the store in plain text and "
                + "can write to it; use --tls-cert/--tls-key, and --read-only for clients you do not trust, or listen on 127.0.0.1 "
                + "or a Unix socket (docs/grpc.md, \"Security notes\")");
        assertThat(warning("0.0.0.0:8000", true)).hasValue("castore daemon: warning: 0.0.0.0:8000 can be "
                + "reached from other machines and is served without TLS: anyone who connects reads the store in plain text; use "
                + "--tls-cert/--tls-key, or listen on 127.0.0.1 or a Unix socket (docs/grpc.md, \"Security notes\")");
        assertThat(warning("[::]:8000", true)).isPresent();
    }

    @Test
    void loopbackAndUnixSocketsAreNot() {
        for (String address : new String[]{"127.0.0.1:8000", "127.0.0.2:8000", "[::1]:8000", "localhost:8000"}) {
            assertThat(warning(address, false)).as(address).isEmpty();
        }
        assertThat(Daemon.exposureWarning(new ListenAddress.Unix(Path.of("/run/castore.sock")), false, false)).isEmpty();
        assertThat(Daemon.exposureWarning(ListenAddress.parse("0.0.0.0:8000"), true, false)).as("with TLS").isEmpty();
    }
}
