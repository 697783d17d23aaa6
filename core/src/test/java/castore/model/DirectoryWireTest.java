package castore.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.InvalidProtocolBufferException;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The hand-written codec against protobuf-java's generated classes: the same bytes out, and
 * the same verdict (and Directory) for any bytes in, including damaged ones.
 */
class DirectoryWireTest {
    private static final int CASES = 2000;

    @Test
    void encodingIsByteForByteWhatProtobufJavaWrites() {
        Random random = new Random(1);
        for (int c = 0; c < CASES; c++) {
            Directory d = randomDirectory(random);
            assertThat(d.encode()).as("case %d: %s", c, d).isEqualTo(d.toProto().toByteArray());
        }
    }

    @Test
    void decodingAgreesWithProtobufJavaOnValidAndDamagedBytes() {
        Random random = new Random(2);
        int rejected = 0;
        for (int c = 0; c < CASES; c++) {
            Directory original = randomDirectory(random);
            byte[] bytes = original.encode();
            assertThat(Directory.decode(bytes).encode()).isEqualTo(bytes);
            assertThat(Directory.decode(bytes).size()).as("case %d: size", c).isEqualTo(original.size());
            for (int m = 0; m < 5; m++) {
                byte[] damaged = damage(bytes, random);
                Directory expected = viaProtobuf(damaged);
                if (expected == null) {
                    rejected++;
                    assertThatThrownBy(() -> Directory.decode(damaged)).as("case %d.%d", c, m)
                            .isInstanceOf(InvalidDataException.class);
                } else {
                    assertThat(Directory.decode(damaged)).as("case %d.%d", c, m).isEqualTo(expected);
                    assertThat(Directory.decode(damaged).size()).as("case %d.%d: size", c, m).isEqualTo(expected.size());
                }
            }
        }
        assertThat(rejected).as("damaged inputs rejected").isGreaterThan(CASES);
    }

    @Test
    void fieldsInAnyOrderAndRepeatedScalarsAreReadAsProtobufDoes() {
        byte[] digest = new byte[32];
        digest[0] = 7;
        // FileNode: size, then executable, then digest, then name; size given twice (last wins).
        byte[] file = Protobuf.concat(Protobuf.varintField(3, 1), Protobuf.varintField(4, 1),
                Protobuf.bytesField(2, digest), Protobuf.varintField(3, 42), Protobuf.bytesField(1, "f".getBytes()));
        byte[] dir = Protobuf.concat(Protobuf.bytesField(1, "d".getBytes()), Protobuf.bytesField(2, digest));
        // Files before directories on the wire.
        byte[] bytes = Protobuf.concat(Protobuf.bytesField(2, file), Protobuf.bytesField(1, dir));
        Directory d = Directory.decode(bytes);
        assertThat(d).isEqualTo(viaProtobuf(bytes));
        assertThat(d.get(Name.of("f"))).isEqualTo(new FileNode(B3Digest.of(digest), 42, true));
        assertThat(d.name(0)).isEqualTo(Name.of("d"));
    }

    @Test
    void aNameUsedByTwoKindsIsRejected() {
        byte[] digest = new byte[32];
        byte[] bytes = Protobuf.concat(
                Protobuf.bytesField(1, Protobuf.concat(Protobuf.bytesField(1, "x".getBytes()), Protobuf.bytesField(2, digest))),
                Protobuf.bytesField(3, Protobuf.concat(Protobuf.bytesField(1, "x".getBytes()), Protobuf.bytesField(2, "t".getBytes()))));
        assertThatThrownBy(() -> Directory.decode(bytes)).isInstanceOf(InvalidDataException.class)
                .hasMessageContaining("duplicate name 'x'");
    }

    @Test
    void aDirectoryOfOneKindOfEntryDecodesAsTheBuilderMadeIt() {
        Random random = new Random(3);
        byte[] digest = new byte[32];
        for (int kind = 0; kind < 3; kind++) {
            var b = Directory.builder();
            for (int i = 0; i < 20; i++) {
                random.nextBytes(digest);
                b.add("n" + i, switch (kind) {
                    case 0 -> new DirectoryNode(B3Digest.of(digest), i);
                    case 1 -> new FileNode(B3Digest.of(digest), i, i % 3 == 0);
                    default -> SymlinkNode.of(("t" + i).getBytes());
                });
            }
            Directory built = b.build();
            Directory decoded = Directory.decode(built.encode());
            assertThat(decoded).isEqualTo(built);
            assertThat(decoded.size()).isEqualTo(built.size());
            assertThat(decoded.digest()).isEqualTo(built.digest());
        }
    }

    @Test
    void indexOfAndGetAgreeWithArraysBinarySearch() {
        Random random = new Random(4);
        for (int c = 0; c < CASES; c++) {
            Directory d = randomDirectory(random);
            Name[] names = new Name[d.entryCount()];
            for (int i = 0; i < names.length; i++) {
                names[i] = d.name(i);
                assertThat(d.indexOf(names[i])).isEqualTo(i);
                assertThat(d.get(names[i])).isSameAs(d.node(i));
            }
            for (int probe = 0; probe < 5; probe++) {
                Name other = Name.of(randomName(random));
                assertThat(d.indexOf(other)).as("case %d: %s", c, other).isEqualTo(java.util.Arrays.binarySearch(names, other));
                if (d.indexOf(other) < 0) {
                    assertThat(d.get(other)).isNull();
                }
            }
        }
    }

    /** What the protobuf-java path makes of {@code bytes}, or null if it rejects them. */
    private static Directory viaProtobuf(byte[] bytes) {
        try {
            return Directory.fromProto(castore.proto.Directory.parseFrom(bytes));
        } catch (InvalidProtocolBufferException | InvalidDataException e) {
            return null;
        }
    }

    private static byte[] damage(byte[] bytes, Random random) {
        byte[] copy = bytes.clone();
        if (copy.length == 0) {
            return new byte[] {(byte) random.nextInt(256)};
        }
        switch (random.nextInt(3)) {
            case 0 -> copy[random.nextInt(copy.length)] = (byte) random.nextInt(256);
            case 1 -> copy[random.nextInt(copy.length)] ^= (byte) (1 << random.nextInt(8));
            default -> {
                return java.util.Arrays.copyOf(copy, random.nextInt(copy.length));
            }
        }
        return copy;
    }

    private static Directory randomDirectory(Random random) {
        Directory.Builder b = Directory.builder();
        int n = random.nextInt(12);
        for (int i = 0; i < n; i++) {
            Name name = Name.of(randomName(random));
            if (b.count() > 0 && random.nextInt(8) == 0) {
                continue;
            }
            byte[] digest = new byte[32];
            random.nextBytes(digest);
            long size = switch (random.nextInt(4)) {
                case 0 -> 0;
                case 1 -> random.nextInt(200);
                case 2 -> Long.MAX_VALUE / (1 + random.nextInt(1000));
                default -> random.nextLong() & Long.MAX_VALUE >>> 20;
            };
            Node node = switch (random.nextInt(3)) {
                case 0 -> new DirectoryNode(B3Digest.of(digest), size);
                case 1 -> new FileNode(B3Digest.of(digest), size, random.nextBoolean());
                default -> SymlinkNode.of(randomName(random));
            };
            try {
                b.add(name, node);
            } catch (InvalidDataException duplicateName) {
                // Random names collide now and then; keep the first.
            }
        }
        try {
            return b.build();
        } catch (InvalidDataException overflow) {
            return Directory.empty();
        }
    }

    private static byte[] randomName(Random random) {
        byte[] name = new byte[1 + random.nextInt(random.nextInt(10) == 0 ? 255 : 6)];
        for (int i = 0; i < name.length; i++) {
            int v = random.nextInt(4) == 0 ? 1 + random.nextInt(255) : 'a' + random.nextInt(3);
            name[i] = (byte) (v == '/' ? 'x' : v);
        }
        if (name.length <= 2 && (name[0] == '.')) {
            name[0] = 'y';
        }
        return name;
    }
}
