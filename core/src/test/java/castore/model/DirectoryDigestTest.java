package castore.model;

import static castore.model.Protobuf.concat;
import static castore.model.Protobuf.directoryEntry;
import static castore.model.Protobuf.fileEntry;
import static castore.model.Protobuf.symlinkEntry;
import static org.assertj.core.api.Assertions.assertThat;

import castore.hash.Blake3;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Directory digests pinned independently of our encoder: the expected bytes are protobuf
 * written by hand, and the expected digests were computed from those bytes by b3sum.
 */
class DirectoryDigestTest {
    static final byte[] EMPTY_BLOB = HexFormat.of().parseHex("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
    static final byte[] D1 = filled(0x01);
    static final byte[] D2 = filled(0x42);

    static byte[] filled(int b) {
        byte[] d = new byte[32];
        Arrays.fill(d, (byte) b);
        return d;
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    enum Case {
        EMPTY(Directory.empty(), new byte[0],
                "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
        ONE_FILE(Directory.builder().add(".keep", new FileNode(B3Digest.of(EMPTY_BLOB), 0, false)).build(),
                fileEntry(utf8(".keep"), EMPTY_BLOB, 0, false),
                "8b5b5d642b646bb8ed504b0862c39413e87e57491497de7bd075953f7b83810e"),
        EXECUTABLE_FILE(Directory.builder().add("run.sh", new FileNode(B3Digest.of(D1), 1234, true)).build(),
                fileEntry(utf8("run.sh"), D1, 1234, true),
                "e29119741aac62da3aebafb1c8870c31c0c237a2eb62c0d6bc832910cc3a5e88"),
        SYMLINK(Directory.builder().add("link", SymlinkNode.of("../target")).build(),
                symlinkEntry(utf8("link"), utf8("../target")),
                "0f8b075b793d9c94e4b9c7a1a4e8bd7336e911678c85781c3028e398ae53c022"),
        SUBDIRECTORY(Directory.builder().add("sub", new DirectoryNode(B3Digest.of(D2), 3)).build(),
                directoryEntry(utf8("sub"), D2, 3),
                "933fe95db07074977e6c456832fb813747850856fc4ff8688a791a26c2d8b0e6"),
        // Added out of order: the encoding sorts each list by name.
        MIXED(Directory.builder()
                .add("z", new FileNode(B3Digest.of(D1), 300, true))
                .add("l", SymlinkNode.of("a.txt"))
                .add("b", new DirectoryNode(B3Digest.of(D2), 1L << 40))
                .add("a.txt", new FileNode(B3Digest.of(D1), 5, false))
                .add("a", new DirectoryNode(B3Digest.of(D2), 1))
                .build(),
                concat(directoryEntry(utf8("a"), D2, 1), directoryEntry(utf8("b"), D2, 1L << 40),
                        fileEntry(utf8("a.txt"), D1, 5, false), fileEntry(utf8("z"), D1, 300, true),
                        symlinkEntry(utf8("l"), utf8("a.txt"))),
                "d3b2e11b2ae83f51d6fad7379d0d9db17eab8edb957c7702d0cbb1871a53d710"),
        NON_UTF8_NAME(Directory.builder()
                .add(Name.of(new byte[] {(byte) 0xff, (byte) 0xfe, 'x'}), new FileNode(B3Digest.of(D1), 7, false))
                .add("é", new DirectoryNode(B3Digest.of(D2), 0))
                .build(),
                concat(directoryEntry(utf8("é"), D2, 0), fileEntry(new byte[] {(byte) 0xff, (byte) 0xfe, 'x'}, D1, 7, false)),
                "0a1d5480c722ab370c5e0e91b62137031d71b22f1680ca161409f80b94621f24");

        final Directory directory;
        final byte[] encoding;
        final String digest;

        Case(Directory directory, byte[] encoding, String digest) {
            this.directory = directory;
            this.encoding = encoding;
            this.digest = digest;
        }
    }

    @ParameterizedTest
    @EnumSource(Case.class)
    void encodingIsTheHandWrittenProtobuf(Case c) {
        assertThat(HexFormat.of().formatHex(c.directory.encode())).isEqualTo(HexFormat.of().formatHex(c.encoding));
    }

    @ParameterizedTest
    @EnumSource(Case.class)
    void digestIsBlake3OfTheEncoding(Case c) {
        assertThat(Blake3.digest(c.encoding).toHex()).as("BLAKE3 of the hand-written bytes").isEqualTo(c.digest);
        assertThat(c.directory.digest().toHex()).isEqualTo(c.digest);
        assertThat(c.directory.toNode().digest().toHex()).isEqualTo(c.digest);
    }

    @ParameterizedTest
    @EnumSource(Case.class)
    void decodingTheHandWrittenBytesGivesTheSameDirectory(Case c) {
        Directory decoded = Directory.decode(c.encoding);
        assertThat(decoded).isEqualTo(c.directory);
        assertThat(decoded.digest().toHex()).isEqualTo(c.digest);
    }

    @ParameterizedTest
    @EnumSource(Case.class)
    void sizeCountsEntriesAndChildSizes(Case c) {
        long expected = switch (c) {
            case EMPTY -> 0;
            case ONE_FILE, EXECUTABLE_FILE, SYMLINK -> 1;
            case SUBDIRECTORY -> 1 + 3;
            case MIXED -> 5 + 1 + (1L << 40);
            case NON_UTF8_NAME -> 2;
        };
        assertThat(c.directory.size()).isEqualTo(expected);
        assertThat(c.directory.toNode().size()).isEqualTo(expected);
    }
}
