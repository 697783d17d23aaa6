package castore.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Base64;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class B3DigestTest {
    static final String HEX = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
    /** As tvix prints it: standard base64 with padding. */
    static final String TEXT = "b3:rxNJufX5oaagQE3qNtzJSZvLJcmtwRK3zJqTyuQfMmI=";

    @Test
    void formatIsB3AndPaddedBase64() {
        B3Digest d = B3Digest.of(HexFormat.of().parseHex(HEX));
        assertThat(d).hasToString(TEXT);
        assertThat(d.toHex()).isEqualTo(HEX);
    }

    @Test
    void parseAcceptsTheTextFormAndHex() {
        B3Digest d = B3Digest.parse(TEXT);
        assertThat(d.toHex()).isEqualTo(HEX);
        assertThat(B3Digest.parse(HEX)).isEqualTo(d);
        assertThat(B3Digest.parse(HEX.toUpperCase())).isEqualTo(d);
        assertThat(B3Digest.parse(d.toString())).isEqualTo(d);
    }

    @Test
    void wrongLengthsAreRejected() {
        String short31 = "b3:" + Base64.getEncoder().encodeToString(new byte[31]);
        assertThatThrownBy(() -> B3Digest.parse(short31)).isInstanceOf(InvalidDataException.class)
                .hasMessage("invalid digest '" + short31 + "': 31 bytes, expected 32");
        String long33 = "b3:" + Base64.getEncoder().encodeToString(new byte[33]);
        assertThatThrownBy(() -> B3Digest.parse(long33)).isInstanceOf(InvalidDataException.class).hasMessageContaining("33 bytes");
        assertThatThrownBy(() -> B3Digest.parse("b3:")).isInstanceOf(InvalidDataException.class).hasMessageContaining("0 bytes");
        assertThatThrownBy(() -> B3Digest.parse(HEX.substring(1))).isInstanceOf(InvalidDataException.class)
                .hasMessageContaining("expected b3:<base64> or 64 hex digits");
        assertThatThrownBy(() -> B3Digest.parse(HEX + "00")).isInstanceOf(InvalidDataException.class);
        assertThatThrownBy(() -> B3Digest.of(new byte[31])).isInstanceOf(InvalidDataException.class)
                .hasMessage("invalid digest length 31, expected 32");
        assertThatThrownBy(() -> B3Digest.of((byte[]) null)).isInstanceOf(InvalidDataException.class);
        assertThatThrownBy(() -> B3Digest.of(com.google.protobuf.ByteString.copyFrom(new byte[33])))
                .isInstanceOf(InvalidDataException.class).hasMessage("invalid digest length 33, expected 32");
    }

    @ParameterizedTest
    @ValueSource(strings = {"b3:rxNJufX5oaagQE3qNtzJSZvLJcmtwRK3zJqTyuQfMm!=", "b3:rxNJufX5oaagQE3qNtzJSZvLJcmtwRK3zJqTyuQfMmI=x",
            "b3:rxNJ ufX5oaagQE3qNtzJSZvLJcmtwRK3zJqTyuQfMmI", "b3:rxNJufX5oaagQE3qNtzJSZvLJcmtwRK3zJqTyuQfMmI==="})
    void badBase64IsRejected(String text) {
        assertThatThrownBy(() -> B3Digest.parse(text)).isInstanceOf(InvalidDataException.class)
                .hasMessageStartingWith("invalid digest '" + text + "': ")
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
    }

    @Test
    void badHexAndOtherTextAreRejected() {
        String notHex = "z".repeat(64);
        assertThatThrownBy(() -> B3Digest.parse(notHex)).isInstanceOf(InvalidDataException.class)
                .hasMessageStartingWith("invalid digest '" + notHex + "'");
        assertThatThrownBy(() -> B3Digest.parse("sha256:abc")).isInstanceOf(InvalidDataException.class)
                .hasMessage("invalid digest 'sha256:abc': expected b3:<base64> or 64 hex digits");
        assertThatThrownBy(() -> B3Digest.parse(null)).isInstanceOf(InvalidDataException.class).hasMessage("missing digest");
        assertThatThrownBy(() -> B3Digest.parse("")).isInstanceOf(InvalidDataException.class);
    }

    @Test
    void hugeInputIsNotEchoedWhole() {
        String huge = "b3:" + "A".repeat(100_000);
        assertThatThrownBy(() -> B3Digest.parse(huge)).isInstanceOf(InvalidDataException.class)
                .satisfies(e -> assertThat(e.getMessage()).hasSizeLessThan(300));
    }

    @Test
    void valueSemantics() {
        byte[] bytes = HexFormat.of().parseHex(HEX);
        B3Digest a = B3Digest.of(bytes);
        bytes[0] = 0;
        assertThat(a.toHex()).isEqualTo(HEX);
        assertThat(a).isEqualTo(B3Digest.parse(TEXT)).hasSameHashCodeAs(B3Digest.parse(TEXT));
        byte[] low = new byte[32];
        byte[] high = new byte[32];
        high[0] = (byte) 0x80;
        assertThat(B3Digest.of(low)).isLessThan(B3Digest.of(high));
        assertThat(a.toByteArray()).isEqualTo(HexFormat.of().parseHex(HEX));
    }
}
