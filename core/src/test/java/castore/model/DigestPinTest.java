package castore.model;

import static org.assertj.core.api.Assertions.assertThat;

import castore.hash.Blake3;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class DigestPinTest {
    @Test
    void emptyDirectoryHasTvixDigest() {
        assertThat(Directory.empty().digest().toHex())
                .isEqualTo("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
    }

    @Test
    void blake3OfAbc() {
        assertThat(Blake3.digest("abc".getBytes(StandardCharsets.US_ASCII)).toHex())
                .isEqualTo("6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
    }
}
