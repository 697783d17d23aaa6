package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.BlobWriter;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What only a store on disk can show: corruption, foreign directories, crashes, gc and its lock. */
class LocalStoreTest {
    @TempDir
    Path tmp;

    Path store;
    Cli cli;
    Path tree;
    byte[] data;

    @BeforeEach
    void setUp() throws IOException {
        store = tmp.resolve("store");
        cli = new Cli(store.toString());
        tree = Files.createDirectory(tmp.resolve("tree"));
        data = new byte[1 << 20];
        new SplittableRandom(99).nextBytes(data);
        Files.write(tree.resolve("data.bin"), data);
        Files.writeString(tree.resolve("small"), "small");
        assertThat(cli.run("import", "--quiet", tree.toString()).exit()).isZero();
    }

    @Test
    void aCorruptedDirectoryIsOneProblemForVerifyWhichGoesOnAndStopsGc() throws IOException {
        Path second = Files.createDirectory(tmp.resolve("second"));
        Files.writeString(second.resolve("only"), "only here");
        assertThat(cli.run("import", "--quiet", second.toString()).exit()).isZero();
        byte[] encoded;
        try (var s = castore.service.Stores.open(store.toString(), castore.service.StoreOptions.DEFAULT)) {
            var node = (castore.model.DirectoryNode) s.roots().get(castore.model.Name.of("tree")).orElseThrow();
            encoded = s.directories().get(node.digest()).orElseThrow().encode();
        }
        StoredCopies.corrupt(store, encoded, 0);
        long packBytes = packBytes();

        Cli.Result verify = cli.run("verify");
        assertThat(verify.exit()).as(verify.stderr()).isEqualTo(ExitCodes.PROBLEMS);
        assertThat(verify.lines()).anySatisfy(l -> assertThat(l).contains("is corrupted (tree)"));
        assertThat(verify.stderr()).startsWith("verified 2 roots"); // the walk went on to the second root

        Cli.Result gc = cli.run("gc");
        assertThat(gc.exit()).isEqualTo(ExitCodes.IO);
        assertThat(gc.stderr()).startsWith("castore: cannot collect garbage: directory ").contains("is corrupted")
                .endsWith("run 'castore verify'\n");
        assertThat(packBytes()).as("gc deleted nothing").isEqualTo(packBytes);
    }

    @Test
    void corruptedChunkIsReportedByVerifyAndRefusedByCat() throws IOException {
        assertThat(cli.run("verify").exit()).isZero();
        StoredCopies.corrupt(store, data, data.length / 2);

        Cli.Result verify = cli.run("verify");
        assertThat(verify.exit()).isEqualTo(ExitCodes.PROBLEMS);
        assertThat(verify.lines()).isNotEmpty().allSatisfy(l -> assertThat(l).doesNotContain("\tat "));
        assertThat(verify.stderr()).containsPattern("; [1-9][0-9]* problems?");

        Cli.Result cat = cli.run("cat", "tree/data.bin");
        assertThat(cat.exit()).isEqualTo(ExitCodes.IO);
        assertThat(cat.stderr()).startsWith("castore: ").hasLineCount(1);
        assertThat(cat.stdoutBytes().length).as("never the corrupted bytes").isLessThan(data.length / 2 + 10);
        assertThat(cat.stdoutBytes()).isEqualTo(Arrays.copyOf(data, cat.stdoutBytes().length));

        Path out = tmp.resolve("out");
        Cli.Result export = cli.run("export", "tree", out.toString());
        assertThat(export.exit()).isEqualTo(ExitCodes.IO);
        assertThat(export.stderr()).startsWith("castore: ").hasLineCount(1);

        // The other file is fine.
        assertThat(cli.run("cat", "tree/small").stdout()).isEqualTo("small");
    }

    @Test
    void directoryThatIsNotAStore() throws IOException {
        Path foreign = Files.createDirectory(tmp.resolve("photos"));
        Files.writeString(foreign.resolve("holiday.jpg"), "not a store");
        Cli.Result r = Cli.raw("roots", "--store", foreign.toString());
        assertThat(r.exit()).isEqualTo(ExitCodes.INVALID);
        assertThat(r.stderr()).isEqualTo("castore: " + foreign + " is not a castore store (it is not empty and has no castore-store marker)\n");
        Cli.Result i = Cli.raw("import", "--store", foreign.toString(), tree.toString());
        assertThat(i.exit()).isEqualTo(ExitCodes.INVALID);
        try (Stream<Path> left = Files.list(foreign)) {
            assertThat(left).as("nothing written into it").containsExactly(foreign.resolve("holiday.jpg"));
        }
        Path file = Files.writeString(tmp.resolve("plain-file"), "x");
        assertThat(Cli.raw("roots", "--store", file.toString()).stderr())
                .isEqualTo("castore: " + file + " is not a castore store (it is not a directory)\n");
    }

    @Test
    void gcDeletesOnlyWhatNoRootReaches() throws IOException {
        Path other = Files.createDirectory(tmp.resolve("other"));
        byte[] otherData = new byte[300_000];
        new SplittableRandom(5).nextBytes(otherData);
        Files.write(other.resolve("only-here"), otherData);
        Files.writeString(other.resolve("small"), "small"); // shared with tree
        assertThat(cli.run("import", "--quiet", other.toString()).exit()).isZero();
        B3Digest otherDigest = Blake3.digest(otherData);
        assertThat(cli.run("rm", "other").exit()).isZero();

        Cli.Result gc = cli.run("gc");
        assertThat(gc.exit()).as(gc.stderr()).isZero();
        assertThat(gc.stderr()).matches("gc: kept 1 directory and 2 blobs reachable from 1 root; removed [1-9][0-9]* objects?, freed .*\n");
        assertThat(cli.run("cat", "--blob", otherDigest.toString()).exit()).isEqualTo(ExitCodes.NOT_FOUND);
        assertThat(cli.run("cat", "tree/small").stdout()).isEqualTo("small");
        assertThat(cli.run("cat", "tree/data.bin").stdoutBytes()).isEqualTo(data);
        assertThat(cli.run("verify").exit()).isZero();
    }

    @Test
    void gcIsRefusedWhileAnImportWritesAndImportWhileGcRuns() throws IOException {
        try (Store writer = Stores.open(store.toString(), StoreOptions.DEFAULT); BlobWriter w = writer.blobs().create()) {
            w.write(new byte[] {1, 2, 3}, 0, 3); // a writer in progress holds the store shared
            Cli.Result gc = cli.run("gc");
            assertThat(gc.exit()).isEqualTo(ExitCodes.BUSY);
            assertThat(gc.stderr()).startsWith("castore: the store is busy (").hasLineCount(1)
                    .contains("gc runs only while no import writes to it");
        }
        assertThat(cli.run("gc").exit()).isZero();

        try (Store collector = Stores.open(store.toString(), StoreOptions.DEFAULT);
                Closeable exclusive = collector.maintenance().orElseThrow().exclusive()) {
            Cli.Result imp = cli.run("import", "--name", "late", tree.toString());
            assertThat(imp.exit()).isEqualTo(ExitCodes.BUSY);
            assertThat(imp.stderr()).startsWith("castore: ").contains("garbage-collected").hasLineCount(1);
        }
        assertThat(cli.run("roots").lines()).singleElement().asString().startsWith("tree\t");
    }

    @Test
    void killedImportLeavesAValidStore() throws Exception {
        Path big = Files.createDirectory(tmp.resolve("big"));
        SplittableRandom random = new SplittableRandom(11);
        byte[] content = new byte[256 << 10];
        for (int i = 0; i < 1024; i++) { // 256 MiB on one thread: long enough to be caught mid-way
            random.nextBytes(content);
            Files.write(big.resolve("f" + i), content);
        }
        Process p = ChildCli.start(ChildCli.command("import", "--store", store.toString(), "--threads", "1", big.toString()));
        try {
            waitForPackGrowth();
            assertThat(p.isAlive()).as("import still running when killed").isTrue();
        } finally {
            p.destroyForcibly(); // SIGKILL
            p.waitFor(30, TimeUnit.SECONDS);
        }
        Cli.Result verify = cli.run("verify");
        assertThat(verify.exit()).as(verify.stdout() + verify.stderr()).isZero();
        assertThat(cli.run("roots").lines()).singleElement().asString().startsWith("tree\t");
        assertThat(cli.run("cat", "tree/data.bin").stdoutBytes()).isEqualTo(data);

        Cli.Result again = cli.run("import", "--quiet", big.toString());
        assertThat(again.exit()).as(again.stderr()).isZero();
        assertThat(cli.run("verify").exit()).isZero();
        assertThat(cli.run("gc").exit()).isZero();
        assertThat(cli.run("verify").exit()).isZero();
    }

    /** Waits (bounded) until the child has written well into the store's packs. */
    private void waitForPackGrowth() throws IOException, InterruptedException {
        long before = packBytes();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (packBytes() < before + (8 << 20)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the import wrote nothing within 120 s");
            }
            Thread.sleep(20);
        }
    }

    private long packBytes() throws IOException {
        try (Stream<Path> files = Files.list(store.resolve("packs"))) {
            List<Path> all = files.toList();
            long sum = 0;
            for (Path f : all) {
                try {
                    sum += Files.size(f);
                } catch (IOException vanished) {
                    // a temporary file renamed meanwhile
                }
            }
            return sum;
        }
    }
}
