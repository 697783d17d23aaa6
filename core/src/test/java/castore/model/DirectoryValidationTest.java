package castore.model;

import static castore.model.Protobuf.bytesField;
import static castore.model.Protobuf.concat;
import static castore.model.Protobuf.directoryEntry;
import static castore.model.Protobuf.fileEntry;
import static castore.model.Protobuf.symlinkEntry;
import static castore.model.Protobuf.varintField;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** Every rule of a Directory, on the decode path (data from outside) and the builder. */
class DirectoryValidationTest {
    static final byte[] D = DirectoryDigestTest.D1;

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static FileNode file() {
        return new FileNode(B3Digest.of(D), 1, false);
    }

    @Test
    void unsortedListsAreRejected() {
        byte[] files = concat(fileEntry(b("b"), D, 1, false), fileEntry(b("a"), D, 1, false));
        assertThatThrownBy(() -> Directory.decode(files)).isInstanceOf(InvalidDataException.class)
                .hasMessage("Directory files not sorted or duplicate: 'a' after 'b'");
        byte[] dirs = concat(directoryEntry(b("y"), D, 1), directoryEntry(b("x"), D, 1));
        assertThatThrownBy(() -> Directory.decode(dirs)).hasMessageContaining("directories not sorted");
        byte[] links = concat(symlinkEntry(b("q"), b("t")), symlinkEntry(b("p"), b("t")));
        assertThatThrownBy(() -> Directory.decode(links)).hasMessageContaining("symlinks not sorted");
        // Sorted by unsigned bytes: 0xc3 sorts after 'z'.
        byte[] unsigned = concat(fileEntry(b("é"), D, 1, false), fileEntry(b("z"), D, 1, false));
        assertThatThrownBy(() -> Directory.decode(unsigned)).hasMessageContaining("not sorted");
        assertThat(Directory.decode(concat(fileEntry(b("z"), D, 1, false), fileEntry(b("é"), D, 1, false))).entryCount()).isEqualTo(2);
    }

    @Test
    void duplicatesAreRejected() {
        byte[] sameList = concat(fileEntry(b("a"), D, 1, false), fileEntry(b("a"), D, 2, false));
        assertThatThrownBy(() -> Directory.decode(sameList)).hasMessageContaining("not sorted or duplicate");
        byte[] acrossLists = concat(directoryEntry(b("a"), D, 1), symlinkEntry(b("a"), b("t")));
        assertThatThrownBy(() -> Directory.decode(acrossLists)).isInstanceOf(InvalidDataException.class)
                .hasMessage("duplicate name 'a' in Directory");
        assertThatThrownBy(() -> Directory.builder().add("a", file()).add("a", SymlinkNode.of("t")))
                .isInstanceOf(InvalidDataException.class).hasMessage("duplicate name 'a' in Directory");
    }

    @Test
    void unknownFieldsAreRejected() {
        byte[] topLevel = concat(fileEntry(b("a"), D, 1, false), varintField(4, 1));
        assertThatThrownBy(() -> Directory.decode(topLevel)).isInstanceOf(InvalidDataException.class)
                .hasMessage("Directory has unknown field 4 (wire type 0)");
        byte[] inFile = bytesField(2, concat(bytesField(1, b("a")), bytesField(2, D), varintField(5, 7)));
        assertThatThrownBy(() -> Directory.decode(inFile)).hasMessage("FileNode has unknown field 5 (wire type 0)");
        byte[] inSymlink = bytesField(3, concat(bytesField(1, b("a")), bytesField(2, b("t")), bytesField(9, b("x"))));
        assertThatThrownBy(() -> Directory.decode(inSymlink)).hasMessage("SymlinkNode has unknown field 9 (wire type 2)");
        byte[] inDirectory = bytesField(1, concat(bytesField(1, b("a")), bytesField(2, D), varintField(4, 0)));
        assertThatThrownBy(() -> Directory.decode(inDirectory)).hasMessage("DirectoryNode has unknown field 4 (wire type 0)");
    }

    @Test
    void undecodableBytesAreRejected() {
        byte[] truncated = Arrays.copyOf(fileEntry(b("a"), D, 1, false), 10);
        assertThatThrownBy(() -> Directory.decode(truncated)).isInstanceOf(InvalidDataException.class)
                .hasMessageStartingWith("undecodable Directory: ");
        assertThatThrownBy(() -> Directory.decode(new byte[] {(byte) 0xff})).isInstanceOf(InvalidDataException.class);
    }

    @Test
    void invalidNamesAndDigestsInEntriesAreRejectedNamingTheEntry() {
        assertThatThrownBy(() -> Directory.decode(fileEntry(b(".."), D, 1, false))).isInstanceOf(InvalidDataException.class)
                .hasMessageContaining("invalid name '..'");
        assertThatThrownBy(() -> Directory.decode(fileEntry(new byte[0], D, 1, false))).hasMessageContaining("empty");
        assertThatThrownBy(() -> Directory.decode(directoryEntry(b("a/b"), D, 1))).hasMessageContaining("contains '/'");
        assertThatThrownBy(() -> Directory.decode(fileEntry(b("f"), new byte[31], 1, false)))
                .isInstanceOf(InvalidDataException.class).hasMessage("Directory entry 'f': invalid digest length 31, expected 32");
        assertThatThrownBy(() -> Directory.decode(directoryEntry(b("d"), new byte[0], 1)))
                .hasMessage("Directory entry 'd': invalid digest length 0, expected 32");
    }

    @Test
    void sizesThatOverflowAreRejected() {
        // A uint64 size at or above 2^63 cannot be counted.
        assertThatThrownBy(() -> Directory.decode(directoryEntry(b("d"), D, -1L))).isInstanceOf(InvalidDataException.class)
                .hasMessage("Directory entry 'd': directory size out of range: 18446744073709551615");
        assertThatThrownBy(() -> Directory.decode(fileEntry(b("f"), D, Long.MIN_VALUE, false)))
                .hasMessage("Directory entry 'f': file size out of range: 9223372036854775808");
        byte[] twoHuge = concat(directoryEntry(b("a"), D, Long.MAX_VALUE - 2), directoryEntry(b("b"), D, 1));
        assertThatThrownBy(() -> Directory.decode(twoHuge)).isInstanceOf(InvalidDataException.class)
                .hasMessage("Directory size overflows at 'b'");
        // Just below the limit is fine: 2 entries + (MAX - 3) + 1 = MAX.
        byte[] fits = concat(directoryEntry(b("a"), D, Long.MAX_VALUE - 3), directoryEntry(b("b"), D, 1));
        assertThat(Directory.decode(fits).size()).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void symlinkTargetRules() {
        assertThatThrownBy(() -> Directory.decode(symlinkEntry(b("l"), new byte[0]))).isInstanceOf(InvalidDataException.class)
                .hasMessage("Directory entry 'l': symlink with empty target");
        assertThatThrownBy(() -> SymlinkNode.of(new byte[] {'a', 0})).isInstanceOf(InvalidDataException.class)
                .hasMessageContaining("contains a NUL byte");
        byte[] max = new byte[SymlinkNode.MAX_TARGET_LENGTH];
        Arrays.fill(max, (byte) 'x');
        assertThat(SymlinkNode.of(max).target().size()).isEqualTo(4095);
        byte[] tooLong = Arrays.copyOf(max, 4096);
        tooLong[4095] = 'x';
        assertThatThrownBy(() -> SymlinkNode.of(tooLong)).isInstanceOf(InvalidDataException.class)
                .hasMessage("symlink target longer than 4095 bytes");
        // Targets may be absolute, contain '/' and '..', and need not be UTF-8.
        assertThat(SymlinkNode.of(new byte[] {'/', '.', '.', '/', (byte) 0xff}).target().size()).isEqualTo(5);
    }

    @Test
    void builderSortsAndCounts() {
        Directory d = Directory.builder()
                .add("b", new DirectoryNode(B3Digest.of(D), 10))
                .add("a", file())
                .add("c", SymlinkNode.of("a"))
                .build();
        assertThat(d.entries().keySet()).extracting(Name::toString).containsExactly("a", "b", "c");
        assertThat(d.size()).isEqualTo(3 + 10);
        assertThat(Directory.builder().build()).isSameAs(Directory.empty());
        assertThat(d.get(Name.of("a"))).isEqualTo(file());
        assertThatThrownBy(() -> d.entries().put(Name.of("x"), file())).isInstanceOf(UnsupportedOperationException.class);
    }

    @Test
    void nodeWithoutKindIsRejected() {
        assertThatThrownBy(() -> Node.fromProto(castore.proto.Node.getDefaultInstance())).isInstanceOf(InvalidDataException.class)
                .hasMessage("node has no kind set");
        var named = Node.fromProto(new FileNode(B3Digest.of(D), 3, true).toNodeProto(Name.of("x")));
        assertThat(named.name()).isEqualTo(Name.of("x"));
        assertThat(named.node()).isEqualTo(new FileNode(B3Digest.of(D), 3, true));
    }
}
