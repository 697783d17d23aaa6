package castore.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.SymlinkNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * What every {@link DirectoryService} must do. A backend's test extends this class and returns a
 * fresh, empty service from {@link #directories()} for each test.
 */
public abstract class DirectoryServiceContract {

    /** The service under test; empty when each test starts. */
    protected abstract DirectoryService directories();

    public static FileNode file(String content) {
        byte[] b = content.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        return new FileNode(Blake3.digest(b), b.length, false);
    }

    /** A Directory of files named after {@code names}, for tests that need distinct leaves. */
    public static Directory leaf(String... names) {
        Directory.Builder b = Directory.builder();
        for (String n : names) {
            b.add(n, file(n));
        }
        return b.build();
    }

    @Test
    void putThenGetReturnsTheSameDirectory() throws IOException {
        Directory d = Directory.builder()
                .add("file", new FileNode(Blake3.digest(new byte[] {1}), 1, true))
                .add("link", SymlinkNode.of("../target"))
                .add(Name.of(new byte[] {(byte) 0xff, 'x'}), file("non-utf8 name"))
                .build();
        B3Digest digest = directories().put(d);
        assertThat(digest).isEqualTo(d.digest());
        assertThat(directories().has(digest)).isTrue();
        assertThat(directories().get(digest)).contains(d);
    }

    @Test
    void absentDirectoryIsNowhere() throws IOException {
        B3Digest absent = leaf("never stored").digest();
        assertThat(directories().has(absent)).isFalse();
        assertThat(directories().get(absent)).isEmpty();
    }

    @Test
    void emptyDirectoryHasTheTvixDigest() throws IOException {
        B3Digest d = directories().put(Directory.empty());
        assertThat(d.toHex()).isEqualTo("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
        assertThat(directories().get(d)).contains(Directory.empty());
    }

    @Test
    void parentWithAMissingChildIsRejectedAndNotStored() throws IOException {
        Directory child = leaf("a");
        Directory parent = Directory.builder().add("child", child.toNode()).build();
        assertThatThrownBy(() -> directories().put(parent))
                .isInstanceOf(InvalidDataException.class)
                .hasMessageContaining(child.digest().toString());
        assertThat(directories().has(parent.digest())).isFalse();
    }

    @Test
    void parentClaimingAWrongChildSizeIsRejectedAndNotStored() throws IOException {
        Directory child = leaf("a", "b");
        directories().put(child);
        Directory parent = Directory.builder().add("child", new DirectoryNode(child.digest(), child.size() + 1)).build();
        assertThatThrownBy(() -> directories().put(parent))
                .isInstanceOf(InvalidDataException.class)
                .hasMessageContaining("size");
        assertThat(directories().has(parent.digest())).isFalse();
    }

    @Test
    void putTwiceIsHarmless() throws IOException {
        Directory d = leaf("x", "y");
        assertThat(directories().put(d)).isEqualTo(directories().put(d));
        assertThat(directories().get(d.digest())).contains(d);
    }

    @Test
    void closurePutLeavesFirstReturnsTheRoot() throws IOException {
        Directory leaf = leaf("a");
        Directory middle = Directory.builder().add("leaf", leaf.toNode()).add("f", file("f")).build();
        Directory root = Directory.builder().add("middle", middle.toNode()).add("leaf-again", leaf.toNode()).build();
        ClosurePutter putter = directories().putClosure();
        putter.put(leaf);
        putter.put(middle);
        putter.put(root);
        assertThat(putter.finish()).isEqualTo(root.digest());
        for (Directory d : List.of(leaf, middle, root)) {
            assertThat(directories().get(d.digest())).contains(d);
        }
    }

    @Test
    void closureWithAParentBeforeItsChildIsRejected() {
        Directory leaf = leaf("a");
        Directory root = Directory.builder().add("leaf", leaf.toNode()).build();
        assertThatThrownBy(() -> {
            ClosurePutter putter = directories().putClosure();
            putter.put(root);
            putter.put(leaf);
            putter.finish();
        }).isInstanceOf(InvalidDataException.class);
    }

    @Test
    void recursiveGetIsDepthFirstInNameOrderAndVisitsEachDirectoryOnce() throws IOException {
        Directory shared = leaf("shared");
        Directory a = Directory.builder().add("s", shared.toNode()).add("a", file("a")).build();
        Directory b = Directory.builder().add("s", shared.toNode()).add("b", file("b")).build();
        Directory root = Directory.builder().add("a", a.toNode()).add("b", b.toNode()).add("s", shared.toNode()).build();
        for (Directory d : List.of(shared, a, b, root)) {
            directories().put(d);
        }
        try (var stream = directories().getRecursive(root.digest())) {
            // shared at its first place in the walk: under a, before b.
            assertThat(stream.toList()).containsExactly(root, a, shared, b);
        }
    }

    @Test
    void recursiveGetOfAMissingDirectoryFails() {
        assertThatThrownBy(() -> {
            try (var stream = directories().getRecursive(leaf("missing").digest())) {
                stream.toList();
            }
        }).isInstanceOfAny(NotFoundException.class, UncheckedIOException.class);
    }

    @Test
    void concurrentPutsAllLand() throws Exception {
        List<Directory> all = new ArrayList<>();
        for (int i = 0; i < 400; i++) {
            all.add(leaf("entry " + i, "other " + (i * 7)));
        }
        try (ExecutorService pool = Executors.newFixedThreadPool(8)) {
            List<Future<B3Digest>> puts = new ArrayList<>();
            for (Directory d : all) {
                puts.add(pool.submit(() -> directories().put(d)));
            }
            for (Future<B3Digest> f : puts) {
                f.get();
            }
        }
        for (Directory d : all) {
            assertThat(directories().get(d.digest())).contains(d);
        }
    }
}
