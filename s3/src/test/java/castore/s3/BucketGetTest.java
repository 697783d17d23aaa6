package castore.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** Object bodies are read into an array of their Content-Length, and one cut short is an error, never a short object. */
class BucketGetTest {
    @RegisterExtension
    final OneObjectServer server = new OneObjectServer();
    @Test
    void aBodyOfSeveralMegabytesArrivesWholeWithItsEtag() throws IOException {
        byte[] bytes = new byte[3 << 20 | 12345];
        new Random(7).nextBytes(bytes);
        server.holds(bytes, "e1");
        Bucket.Fetched fetched = server.bucket().get("chunks/x").orElseThrow();
        assertThat(fetched.bytes()).isEqualTo(bytes);
        assertThat(fetched.etag()).isEqualTo("\"e1\"");
    }

    @Test
    void anEmptyBodyIsAnEmptyObjectAndAMissingOneIsEmpty() throws IOException {
        server.holds(new byte[0], "e0");
        assertThat(server.bucket().get("k").orElseThrow().bytes()).isEmpty();
        server.holds(null, null);
        assertThat(server.bucket().get("k")).isEmpty();
    }

    @Test
    void aBodyCutShortIsAFailureNamingTheKey() {
        byte[] bytes = new byte[1 << 20];
        new Random(8).nextBytes(bytes);
        server.holds(bytes, "e1");
        server.cutBodiesAfter(300_000);
        // The JDK's HTTP client refuses this itself ("Premature EOF"); readBody's own check of a
        // stream shorter than its length is the unit case below.
        assertThatThrownBy(() -> server.bucket().get("chunks/cut")).isInstanceOf(IOException.class)
                .hasMessageContaining("s3 get").hasMessageContaining("chunks/cut");
    }

    @Test
    void readBodyTakesExactlyTheLengthItWasGiven() throws IOException {
        byte[] bytes = {1, 2, 3, 4, 5};
        assertThat(Bucket.readBody(new ByteArrayInputStream(bytes), 5L)).isEqualTo(bytes);
        assertThat(Bucket.readBody(new ByteArrayInputStream(bytes), null)).isEqualTo(bytes); // no length: all of it
        assertThatThrownBy(() -> Bucket.readBody(new ByteArrayInputStream(bytes), 6L)).isInstanceOf(EOFException.class)
                .hasMessageContaining("after 5 of its 6 bytes");
        assertThatThrownBy(() -> Bucket.readBody(new ByteArrayInputStream(bytes), 4L)).isInstanceOf(IOException.class)
                .hasMessageContaining("longer than its 4 bytes");
    }
}
