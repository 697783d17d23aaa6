package castore.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class NameTest {
    static byte[] repeat(char c, int n) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) c);
        return b;
    }

    @Test
    void emptyIsRejected() {
        assertThatThrownBy(() -> Name.of("")).isInstanceOf(InvalidDataException.class).hasMessage("invalid name '': empty");
    }

    @ParameterizedTest
    @ValueSource(strings = {"/", "a/b", "/a", "a/"})
    void slashIsRejected(String name) {
        assertThatThrownBy(() -> Name.of(name)).isInstanceOf(InvalidDataException.class).hasMessageEndingWith("contains '/'");
    }

    @Test
    void nulIsRejected() {
        assertThatThrownBy(() -> Name.of(new byte[] {'a', 0, 'b'})).isInstanceOf(InvalidDataException.class)
                .hasMessage("invalid name 'a\\x00b': contains a NUL byte");
    }

    @ParameterizedTest
    @ValueSource(strings = {".", ".."})
    void dotAndDotDotAreRejected(String name) {
        assertThatThrownBy(() -> Name.of(name)).isInstanceOf(InvalidDataException.class).hasMessageContaining("reserved");
    }

    @ParameterizedTest
    @ValueSource(strings = {"...", ".a", "..a", "a.", " ", "with space", "new\nline", "é", "\u00ff"})
    void otherNamesAreAccepted(String name) {
        assertThat(Name.of(name).toString()).isEqualTo(name);
        assertThat(Name.isValid(name.getBytes(StandardCharsets.UTF_8))).isTrue();
    }

    @Test
    void lengthIsAtMost255Bytes() {
        assertThat(Name.of(repeat('x', 255)).length()).isEqualTo(255);
        assertThatThrownBy(() -> Name.of(repeat('x', 256))).isInstanceOf(InvalidDataException.class)
                .hasMessageEndingWith("longer than 255 bytes");
        // Bytes, not characters: 128 two-byte characters are 256 bytes.
        assertThatThrownBy(() -> Name.of("é".repeat(128))).isInstanceOf(InvalidDataException.class);
        assertThat(Name.isValid(repeat('x', 256))).isFalse();
    }

    @Test
    void namesAreBytesNotStrings() {
        byte[] latin1 = {(byte) 0xe9, 't', 'e'};
        Name name = Name.of(latin1);
        assertThat(name.toByteArray()).isEqualTo(latin1);
        assertThat(name).isEqualTo(Name.of(latin1.clone())).isNotEqualTo(Name.of("éte"));
        // The caller's array is copied.
        latin1[0] = 'x';
        assertThat(name.toByteArray()[0]).isEqualTo((byte) 0xe9);
    }

    @Test
    void orderIsByUnsignedBytes() {
        Name high = Name.of(new byte[] {(byte) 0xc3, (byte) 0xa9});
        assertThat(Name.of("z")).isLessThan(high);
        assertThat(Name.of("A")).isLessThan(Name.of("a"));
        assertThat(Name.of("a")).isLessThan(Name.of("a.txt"));
    }

    @Test
    void orderAndHashAreThoseOfTheBytes() {
        java.util.Random random = new java.util.Random(5);
        for (int c = 0; c < 20_000; c++) {
            byte[] a = randomValid(random);
            // Often a prefix of the other, or equal to it up to one byte.
            byte[] b = switch (random.nextInt(3)) {
                case 0 -> randomValid(random);
                case 1 -> {
                    byte[] prefix = Arrays.copyOf(a, 1 + random.nextInt(a.length));
                    yield Name.isValid(prefix) ? prefix : a.clone();
                }
                default -> {
                    byte[] changed = a.clone();
                    changed[random.nextInt(changed.length)] = (byte) (1 + random.nextInt(255));
                    yield Name.isValid(changed) ? changed : a.clone();
                }
            };
            Name x = Name.of(a);
            Name y = Name.of(b);
            assertThat(Integer.signum(x.compareTo(y))).as("%s vs %s", x, y).isEqualTo(Integer.signum(Arrays.compareUnsigned(a, b)));
            assertThat(x.equals(y)).isEqualTo(Arrays.equals(a, b));
            assertThat(x.hashCode()).isEqualTo(Arrays.hashCode(a)).isEqualTo(x.hashCode());
        }
    }

    private static byte[] randomValid(java.util.Random random) {
        byte[] bytes = new byte[1 + random.nextInt(random.nextInt(8) == 0 ? 255 : 12)];
        for (int i = 0; i < bytes.length; i++) {
            int v = random.nextInt(3) == 0 ? 1 + random.nextInt(255) : 'a' + random.nextInt(3);
            bytes[i] = (byte) (v == '/' ? 'b' : v);
        }
        if (!Name.isValid(bytes)) {
            bytes[0] = 'z'; // "." and ".."
        }
        return bytes;
    }

    @Test
    void ofOrNullChecksOnceAndCopies() {
        byte[] bytes = "name".getBytes(StandardCharsets.UTF_8);
        Name name = Name.ofOrNull(bytes);
        assertThat(name).isEqualTo(Name.of("name"));
        bytes[0] = 'x';
        assertThat(name.toString()).isEqualTo("name");
        assertThat(Name.ofOrNull(new byte[0])).isNull();
        assertThat(Name.ofOrNull("a/b".getBytes(StandardCharsets.UTF_8))).isNull();
        assertThat(Name.ofOrNull(new byte[] {'a', 0})).isNull();
        assertThat(Name.ofOrNull("..".getBytes(StandardCharsets.UTF_8))).isNull();
        assertThat(Name.ofOrNull(repeat('x', 256))).isNull();
        assertThat(Name.ofOrNull(repeat('x', 255))).isNotNull();
    }

    @Test
    void errorMessagesStayOnOneLine() {
        byte[] bad = ("line1\nline2\t" + "x".repeat(300)).getBytes(StandardCharsets.UTF_8);
        assertThatThrownBy(() -> Name.of(bad)).isInstanceOf(InvalidDataException.class)
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n", "\t").contains("line1\\nline2\\t").hasSizeLessThan(200));
        byte[] notUtf8 = {'a', (byte) 0xff, '/', 'b'};
        assertThatThrownBy(() -> Name.of(notUtf8)).hasMessage("invalid name 'a\\xff/b': contains '/'");
        assertThat(Name.of("é\u0085x").display()).isEqualTo("é\\xc2\\x85x");
        assertThat(Name.of("x".repeat(255)).display()).hasSize(80).endsWith("...");
        assertThat(Name.of("x".repeat(80)).display()).isEqualTo("x".repeat(80));
    }
}
