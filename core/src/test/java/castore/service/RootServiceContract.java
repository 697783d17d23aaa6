package castore.service;

import static org.assertj.core.api.Assertions.assertThat;

import castore.hash.Blake3;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Name;
import castore.model.Node;
import castore.model.SymlinkNode;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * What every {@link RootService} must do. A backend's test extends this class and returns a
 * fresh, empty service from {@link #roots()} for each test. Roots need not point at stored data.
 */
public abstract class RootServiceContract {

    /** The service under test; empty when each test starts. */
    protected abstract RootService roots();

    protected static Node fileNode(int i) {
        return new FileNode(Blake3.digest(new byte[] {(byte) i, (byte) (i >> 8), (byte) (i >> 16)}), i, i % 2 == 0);
    }

    protected List<Node.NamedNode> listAll() throws IOException {
        try (Stream<Node.NamedNode> s = roots().list()) {
            return s.toList();
        }
    }

    @Test
    void absentNameIsNowhere() throws IOException {
        assertThat(roots().get(Name.of("nothing"))).isEmpty();
        assertThat(roots().remove(Name.of("nothing"))).isFalse();
        assertThat(listAll()).isEmpty();
    }

    @Test
    void everyKindOfNodeRoundTrips() throws IOException {
        Node dir = new DirectoryNode(Blake3.digest(new byte[] {9}), 42);
        Node file = new FileNode(Blake3.digest(new byte[] {8}), 7, true);
        Node link = SymlinkNode.of("/nix/store/x");
        roots().put(Name.of("dir"), dir);
        roots().put(Name.of("file"), file);
        roots().put(Name.of("link"), link);
        assertThat(roots().get(Name.of("dir"))).contains(dir);
        assertThat(roots().get(Name.of("file"))).contains(file);
        assertThat(roots().get(Name.of("link"))).contains(link);
    }

    @Test
    void putRepointsAName() throws IOException {
        roots().put(Name.of("r"), fileNode(1));
        roots().put(Name.of("r"), fileNode(2));
        assertThat(roots().get(Name.of("r"))).contains(fileNode(2));
        assertThat(listAll()).containsExactly(new Node.NamedNode(Name.of("r"), fileNode(2)));
    }

    @Test
    void removeTakesTheNameAwayOnce() throws IOException {
        roots().put(Name.of("r"), fileNode(1));
        assertThat(roots().remove(Name.of("r"))).isTrue();
        assertThat(roots().remove(Name.of("r"))).isFalse();
        assertThat(roots().get(Name.of("r"))).isEmpty();
        roots().put(Name.of("r"), fileNode(3));
        assertThat(roots().get(Name.of("r"))).contains(fileNode(3));
    }

    @Test
    void listIsInUnsignedByteOrderIncludingNonUtf8Names() throws IOException {
        List<Name> names = List.of(
                Name.of(new byte[] {(byte) 0xff, (byte) 0xfe}),
                Name.of("b"),
                Name.of(new byte[] {(byte) 0x80}),
                Name.of("B"),
                Name.of("a b"),
                Name.of("a\nb"),
                Name.of("\u00e9t\u00e9"),
                Name.of("a"));
        for (int i = 0; i < names.size(); i++) {
            roots().put(names.get(i), fileNode(i));
        }
        TreeMap<Name, Node> expected = new TreeMap<>();
        for (int i = 0; i < names.size(); i++) {
            expected.put(names.get(i), fileNode(i));
        }
        assertThat(listAll()).containsExactlyElementsOf(expected.entrySet().stream()
                .map(e -> new Node.NamedNode(e.getKey(), e.getValue())).toList());
        assertThat(roots().get(Name.of(new byte[] {(byte) 0xff, (byte) 0xfe}))).contains(fileNode(0));
    }

    @Test
    void manyPutsAndRemovesMatchAModel() throws IOException {
        TreeMap<Name, Node> model = new TreeMap<>();
        SplittableRandom random = new SplittableRandom(17);
        for (int i = 0; i < 600; i++) {
            Name name = Name.of("root-" + random.nextInt(150));
            if (random.nextInt(4) == 0) {
                assertThat(roots().remove(name)).isEqualTo(model.remove(name) != null);
            } else {
                roots().put(name, fileNode(i));
                model.put(name, fileNode(i));
            }
        }
        for (Map.Entry<Name, Node> e : model.entrySet()) {
            assertThat(roots().get(e.getKey())).contains(e.getValue());
        }
        assertThat(listAll()).containsExactlyElementsOf(model.entrySet().stream()
                .map(e -> new Node.NamedNode(e.getKey(), e.getValue())).toList());
    }
}
