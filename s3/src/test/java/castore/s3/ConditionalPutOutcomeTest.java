package castore.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A conditional write whose answer is lost in transit (as S3Proxy's refusal of one was on a busy
 * machine: "Error writing request body to server") is decided by what the object holds afterwards
 * ({@link OneObjectServer} drops every PUT unanswered).
 */
class ConditionalPutOutcomeTest {
    private OneObjectServer server;
    private Bucket bucket;

    @BeforeEach
    void start() throws IOException {
        server = new OneObjectServer();
        bucket = server.bucket();
    }

    @AfterEach
    void stop() throws Exception {
        server.close();
    }

    private void holds(byte[] bytes, String tag) {
        server.holds(bytes, tag);
    }

    @Test
    void anIfMatchWriteLostInTransitIsRefusedWhenTheObjectChanged() throws IOException {
        holds(new byte[] {9}, "e2");
        assertThat(bucket.putIfMatch("root", new byte[] {3}, "\"e1\"")).isFalse();
    }

    @Test
    void anIfNoneMatchWriteLostInTransitIsRefusedWhenTheObjectExists() throws IOException {
        holds(new byte[] {9}, "e2");
        assertThat(bucket.putIfAbsent("root", new byte[] {3})).isFalse();
    }

    @Test
    void aWriteLostInTransitLandedWhenTheObjectHoldsItsBytes() throws IOException {
        holds(new byte[] {3}, "e3");
        assertThat(bucket.putIfMatch("root", new byte[] {3}, "\"e1\"")).isTrue();
        assertThat(bucket.putIfAbsent("root", new byte[] {3})).isTrue();
    }

    @Test
    void aWriteLostInTransitThatNothingExplainsIsAFailure() {
        holds(new byte[] {1}, "e1");
        assertThatThrownBy(() -> bucket.putIfMatch("root", new byte[] {3}, "\"e1\"")).isInstanceOf(IOException.class)
                .hasMessageContaining("s3 put");
        holds(null, null);
        assertThatThrownBy(() -> bucket.putIfAbsent("root", new byte[] {3})).isInstanceOf(IOException.class)
                .hasMessageContaining("s3 put");
    }
}
