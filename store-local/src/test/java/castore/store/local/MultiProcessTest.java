package castore.store.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Name;
import castore.model.Node;
import castore.service.Store;
import castore.service.StoreBusyException;
import java.io.BufferedReader;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Two processes on one store: a second JVM runs {@link StoreChild} on the test classpath. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class MultiProcessTest {
    @TempDir
    Path tmp;
    private final List<Process> children = new ArrayList<>();

    private Path dir() {
        return tmp.resolve("store");
    }

    private Process child(String mode) throws IOException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(java.toString(), "--enable-native-access=ALL-UNNAMED", "-Xmx256m",
                "-cp", System.getProperty("java.class.path"), StoreChild.class.getName(), mode, dir().toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        children.add(p);
        return p;
    }

    private static String expectLine(BufferedReader out, String prefix) throws IOException {
        String line = out.readLine();
        assertThat(line).as("child output").isNotNull().startsWith(prefix);
        return line;
    }

    @AfterEach
    void stopChildren() throws InterruptedException {
        for (Process p : children) {
            p.destroyForcibly();
            p.waitFor();
        }
    }

    @Test
    void anOpenStoreSeesRootsAndObjectsAnotherProcessImports() throws Exception {
        try (LocalStore local = LocalStore.open(dir(), LocalStore.Options.defaults().withReadOnly(true)); Store store = local.asStore()) {
            assertThat(store.roots().get(Name.of("from-child"))).isEmpty();
            Process p = child("import");
            BufferedReader out = p.inputReader();
            B3Digest digest = B3Digest.parse(expectLine(out, "committed ").substring("committed ".length()));

            Node root = store.roots().get(Name.of("from-child")).orElseThrow();
            assertThat(root).isInstanceOf(DirectoryNode.class);
            assertThat(((DirectoryNode) root).digest()).isEqualTo(digest);
            assertRoundReadable(store, 1, digest);
            p.getOutputStream().close();
            assertThat(p.waitFor()).isZero();
        }
    }

    @Test
    void gcIsRefusedWhileAnotherProcessWrites() throws Exception {
        try (LocalStore local = LocalStore.open(dir(), LocalStore.Options.defaults())) {
            Process p = child("hold-writer");
            expectLine(p.inputReader(), "writing");
            assertThatThrownBy(local::exclusive).isInstanceOf(StoreBusyException.class)
                    .hasMessageContaining("an import is running");
            p.getOutputStream().close();
            assertThat(p.waitFor()).isZero();
            try (Closeable lock = local.exclusive()) {
                assertThat(lock).isNotNull();
            }
        }
    }

    @Test
    void anImportKilledMidWayLeavesAStoreThatVerifiesClean() throws Exception {
        Files.createDirectories(dir());
        Process p = child("import-forever");
        BufferedReader out = p.inputReader();
        for (int round = 1; round <= 3; round++) {
            expectLine(out, "root " + round);
        }
        p.destroyForcibly(); // SIGKILL, somewhere in the middle of writing round 4 or later
        p.waitFor();

        Set<B3Digest> liveBlobs = new HashSet<>();
        Set<B3Digest> liveDirs = new HashSet<>();
        try (LocalStore local = LocalStore.open(dir(), LocalStore.Options.defaults()); Store store = local.asStore()) {
            List<String> problems = new ArrayList<>();
            local.verifyStored(problems::add);
            assertThat(problems).isEmpty();
            List<Node.NamedNode> roots;
            try (var s = store.roots().list()) {
                roots = s.toList();
            }
            assertThat(roots).hasSizeGreaterThanOrEqualTo(3);
            for (Node.NamedNode r : roots) {
                int round = Integer.parseInt(r.name().toString().substring("round-".length()));
                B3Digest d = ((DirectoryNode) r.node()).digest();
                assertRoundReadable(store, round, d);
                liveDirs.add(d);
                for (Node n : store.directories().get(d).orElseThrow().entries().values()) {
                    liveBlobs.add(((FileNode) n).digest());
                }
            }
            // gc clears whatever the killed process left unpublished, and the store still verifies.
            try (Closeable lock = local.exclusive()) {
                local.sweep(liveBlobs, liveDirs);
            }
            assertThat(LocalStore.orphans(dir().resolve("packs"))).isEmpty();
            local.verifyStored(problems::add);
            assertThat(problems).isEmpty();
            for (Node.NamedNode r : roots) {
                assertRoundReadable(store, Integer.parseInt(r.name().toString().substring(6)), ((DirectoryNode) r.node()).digest());
            }
        }
    }

    private static void assertRoundReadable(Store store, int round, B3Digest directory) throws IOException {
        Directory d = store.directories().get(directory).orElseThrow();
        assertThat(d.entryCount()).isEqualTo(StoreChild.BLOBS_PER_ROUND);
        for (int i = 0; i < StoreChild.BLOBS_PER_ROUND; i++) {
            byte[] expected = StoreChild.blob(round, i);
            FileNode f = (FileNode) d.get(Name.of("file-" + i));
            assertThat(f.digest()).isEqualTo(Blake3.digest(expected));
            assertThat(LocalStoreTest.read(store, f.digest())).isEqualTo(expected);
        }
    }
}
