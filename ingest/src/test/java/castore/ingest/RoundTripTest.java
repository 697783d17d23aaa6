package castore.ingest;

import static castore.ingest.RawTree.bytes;
import static castore.ingest.RawTree.join;
import static castore.ingest.RawTree.mkdir;
import static castore.ingest.RawTree.symlink;
import static castore.ingest.RawTree.write;
import static org.assertj.core.api.Assertions.assertThat;

import castore.ingest.posix.Posix;
import castore.model.DirectoryNode;
import castore.model.Node;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Import then export reproduces every name, byte, symlink target and executable bit. */
class RoundTripTest {
    @TempDir
    Path tmp;

    Store store;
    byte[] src;
    long uniqueContentBytes;

    @BeforeEach
    void open() throws IOException {
        store = Stores.open(storeAddress(), StoreOptions.DEFAULT);
        src = join(bytes(tmp), "src");
        mkdir(src);
    }

    /** The store under test; subclasses run the same suite on other backends. */
    String storeAddress() {
        return "memory://";
    }

    @AfterEach
    void close() throws IOException {
        store.close();
    }

    private void awkwardTree() throws IOException {
        Set<String> contents = new HashSet<>();
        write(join(src, "with space"), "space");
        write(join(src, "new\nline"), "newline");
        write(join(src, "tab\there"), "tab");
        write(join(src, "back\\slash"), "backslash");
        write(join(src, "é日本"), "utf8");
        write(join(src, new byte[] {'a', (byte) 0xff, (byte) 0xfe, 'b'}), "latin garbage".getBytes(StandardCharsets.UTF_8), 0644);
        byte[] odd = join(src, new byte[] {(byte) 0x80, 'd', 'i', 'r', (byte) 0xc3});
        mkdir(odd);
        write(join(odd, new byte[] {(byte) 0xc0, (byte) 0xaf}), "overlong slash");
        byte[] ascii255 = new byte[255];
        Arrays.fill(ascii255, (byte) 'n');
        write(join(src, ascii255), "255");
        write(join(src, "日".repeat(85)), "255 utf8"); // 85 x 3 bytes
        write(join(src, "empty"), new byte[0], 0644);
        mkdir(join(src, "emptydir"));
        mkdir(join(src, "emptydir2"));
        byte[] deep = join(src, "deep");
        mkdir(deep);
        for (int i = 0; i < 200; i++) {
            deep = join(deep, "d");
            mkdir(deep);
        }
        write(join(deep, "bottom"), "at depth 200");
        byte[] big = new byte[3 << 20];
        new SplittableRandom(7).nextBytes(big);
        write(join(src, "big"), big, 0644);
        byte[] dup = new byte[1 << 20];
        new SplittableRandom(8).nextBytes(dup);
        write(join(src, "dup1"), dup, 0644);
        write(join(src, "dup2"), dup, 0644);
        mkdir(join(src, "sub"));
        write(join(src, "sub", "dup3"), dup, 0755);
        write(join(src, "run.sh"), "#!/bin/sh\n".getBytes(StandardCharsets.UTF_8), 0755);
        write(join(src, "owner-x-only"), "x".getBytes(StandardCharsets.UTF_8), 0700);
        write(join(src, "group-x-only"), "gx".getBytes(StandardCharsets.UTF_8), 0654);
        write(join(src, "read-only"), "ro".getBytes(StandardCharsets.UTF_8), 0444);
        symlink(join(src, "run.sh"), join(src, "absolute"));
        symlink("../x/y", join(src, "relative"));
        symlink("does/not/exist", join(src, "dangling"));
        symlink("emptydir", join(src, "to-dir"));
        symlink(new byte[] {'t', (byte) 0xff, '\n'}, join(src, "odd-target"));
        for (String c : new String[] {"space", "newline", "tab", "backslash", "utf8", "latin garbage", "overlong slash", "255",
            "255 utf8", "", "at depth 200", "#!/bin/sh\n", "x", "gx", "ro"}) {
            contents.add(c);
        }
        uniqueContentBytes = contents.stream().mapToLong(c -> c.getBytes(StandardCharsets.UTF_8).length).sum()
                + big.length + dup.length;
    }

    @Test
    void awkwardTreeRoundTrips() throws IOException {
        awkwardTree();
        Importer importer = new Importer(store.blobs(), store.directories(), 2);
        Node root = importer.importPath(src);
        assertThat(root).isInstanceOf(DirectoryNode.class);
        ImportStats stats = importer.stats();
        assertThat(stats.files()).isEqualTo(19);
        assertThat(stats.symlinks()).isEqualTo(5);
        assertThat(stats.directories()).isEqualTo(1 + 1 + 2 + 1 + 200 + 1);
        assertThat(stats.bytesStored()).as("identical files stored once").isEqualTo(uniqueContentBytes);

        byte[] dest = join(bytes(tmp), "dest");
        Exporter exporter = new Exporter(store.blobs(), store.directories(), 2);
        exporter.export(root, dest);
        assertThat(RawTree.describe(dest)).isEqualTo(RawTree.describe(src));
        assertThat(exporter.stats().files()).isEqualTo(19);

        // Exported modes are normalised: 0755 for executables and directories, 0644 otherwise.
        assertThat(mode(join(dest, "run.sh"))).isEqualTo(0755);
        assertThat(mode(join(dest, "owner-x-only"))).isEqualTo(0755);
        assertThat(mode(join(dest, "group-x-only"))).isEqualTo(0644);
        assertThat(mode(join(dest, "read-only"))).isEqualTo(0644);
        assertThat(mode(join(dest, "emptydir"))).isEqualTo(0755);
        assertThat(mode(dest)).isEqualTo(0755);

        // Importing the export again gives the same root and stores nothing new.
        Importer again = new Importer(store.blobs(), store.directories(), 1);
        assertThat(again.importPath(dest)).isEqualTo(root);
        assertThat(again.stats().bytesStored()).isZero();
        assertThat(again.stats().bytesRead()).isEqualTo(stats.bytesRead());
    }

    @Test
    void manyFilesWithFewFilesInFlight() throws IOException {
        // More files than the in-flight bound and many small directories: completion order varies.
        SplittableRandom random = new SplittableRandom(3);
        for (int d = 0; d < 30; d++) {
            byte[] dir = join(src, "dir" + d);
            mkdir(dir);
            for (int f = 0; f < 40; f++) {
                byte[] content = new byte[random.nextInt(5000)];
                random.nextBytes(content);
                write(join(dir, "f" + f), content, random.nextBoolean() ? 0755 : 0644);
            }
        }
        Node root = new Importer(store.blobs(), store.directories(), 3, 4).importPath(src);
        byte[] dest = join(bytes(tmp), "dest");
        new Exporter(store.blobs(), store.directories(), 3).export(root, dest);
        Map<String, String> described = RawTree.describe(dest);
        assertThat(described).hasSize(30 + 30 * 40).isEqualTo(RawTree.describe(src));
        assertThat(new Importer(store.blobs(), store.directories(), 1).importPath(src)).isEqualTo(root);
    }

    private static int mode(byte[] path) throws IOException {
        return Posix.lstatat(Posix.AT_FDCWD, path, path).mode() & 07777;
    }
}
