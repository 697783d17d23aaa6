package castore.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A conditional write whose answer is lost in transit (as S3Proxy's refusal of one was on a busy
 * machine: "Error writing request body to server") is decided by what the object holds afterwards
 * ({@link OneObjectServer} drops every PUT unanswered).
 */
class ConditionalPutOutcomeTest {
    @RegisterExtension
    final OneObjectServer server = new OneObjectServer();
    @Test
    void anIfMatchWriteLostInTransitIsRefusedWhenTheObjectChanged() throws IOException {
        server.holds(new byte[] {9}, "e2");
        assertThat(server.bucket().putIfMatch("root", new byte[] {3}, "\"e1\"")).isFalse();
    }

    @Test
    void anIfNoneMatchWriteLostInTransitIsRefusedWhenTheObjectExists() throws IOException {
        server.holds(new byte[] {9}, "e2");
        assertThat(server.bucket().putIfAbsent("root", new byte[] {3})).isFalse();
    }

    @Test
    void aWriteLostInTransitLandedWhenTheObjectHoldsItsBytes() throws IOException {
        server.holds(new byte[] {3}, "e3");
        assertThat(server.bucket().putIfMatch("root", new byte[] {3}, "\"e1\"")).isTrue();
        assertThat(server.bucket().putIfAbsent("root", new byte[] {3})).isTrue();
    }

    @Test
    void aWriteLostInTransitThatNothingExplainsIsAFailure() {
        server.holds(new byte[] {1}, "e1");
        assertThatThrownBy(() -> server.bucket().putIfMatch("root", new byte[] {3}, "\"e1\"")).isInstanceOf(IOException.class)
                .hasMessageContaining("s3 put");
        server.holds(null, null);
        assertThatThrownBy(() -> server.bucket().putIfAbsent("root", new byte[] {3})).isInstanceOf(IOException.class)
                .hasMessageContaining("s3 put");
    }
}
