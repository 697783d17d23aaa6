package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.grpc.server.CastoreServer;
import castore.service.Store;
import castore.service.Stores;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.Base64;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** TLS with a self-signed certificate made by the JDK's keytool: grpc+https with ?ca= trusts it. */
class TlsTest {
    @TempDir
    Path dir;

    /** Writes cert.pem and key.pem (PKCS#8) for CN=localhost, SAN 127.0.0.1 and localhost. */
    private void makeCertificate() throws Exception {
        Path keystore = dir.resolve("ks.p12");
        Process keytool = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "keytool").toString(),
                "-genkeypair", "-keyalg", "EC", "-groupname", "secp256r1", "-alias", "castore", "-dname", "CN=localhost",
                "-ext", "SAN=ip:127.0.0.1,dns:localhost", "-validity", "2", "-storetype", "PKCS12",
                "-keystore", keystore.toString(), "-storepass", "changeit", "-keypass", "changeit")
                .redirectErrorStream(true).start();
        String output = new String(keytool.getInputStream().readAllBytes());
        assertThat(keytool.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(keytool.exitValue()).as(output).isZero();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(keystore)) {
            ks.load(in, "changeit".toCharArray());
        }
        Files.writeString(dir.resolve("cert.pem"), pem("CERTIFICATE", ks.getCertificate("castore").getEncoded()));
        Files.writeString(dir.resolve("key.pem"), pem("PRIVATE KEY", ks.getKey("castore", "changeit".toCharArray()).getEncoded()));
    }

    private static String pem(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, "\n".getBytes()).encodeToString(der)
                + "\n-----END " + type + "-----\n";
    }

    @Test
    void tlsRoundTripAndPlaintextRefused() throws Exception {
        makeCertificate();
        Store backing = TestServer.memoryStore();
        try (CastoreServer server = CastoreServer.start(backing, new CastoreServer.Config(
                new ListenAddress.Tcp("127.0.0.1", 0), false, dir.resolve("cert.pem"), dir.resolve("key.pem")))) {
            int port = ((ListenAddress.Tcp) server.address()).port();
            try (Store client = Stores.open("grpc+https://127.0.0.1:" + port + "?ca=" + dir.resolve("cert.pem"), TestServer.CLIENT_OPTIONS)) {
                byte[] data = TestData.random(61, 200_000);
                assertThat(TestData.readAll(client.blobs(), TestData.put(client.blobs(), data))).isEqualTo(data);
            }
            try (Store plaintext = Stores.open("grpc+http://127.0.0.1:" + port, TestServer.SHORT_TIMEOUT)) {
                assertThatThrownBy(() -> plaintext.blobs().has(castore.hash.Blake3.digest(new byte[0]))).isInstanceOf(IOException.class);
            }
            try (Store untrusting = Stores.open("grpc+https://127.0.0.1:" + port, TestServer.SHORT_TIMEOUT)) {
                // gRPC keeps no reason for a handshake that failed ("io exception"), so the error
                // names the certificate as a cause, not only a daemon that is not there.
                assertThatThrownBy(() -> untrusting.blobs().has(castore.hash.Blake3.digest(new byte[0]))).isInstanceOf(IOException.class)
                        .hasMessageContaining("could not be reached").hasMessageContaining("certificate this client trusts (?ca=FILE)");
            }
        } finally {
            backing.close();
        }
    }
}
